"""Container resource limits: Docker's flags in, validated the way Docker's daemon does,
out as the OCI config's linux.resources and as inspect's HostConfig fields. Pure.

Values are normalized like Docker's: a memory limit without --memory-swap gets swap equal
to the memory (MemorySwap = 2 x Memory), --pids-limit 0 or negative means unlimited (None),
and --cpus becomes a CFS quota over a 100 ms period.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from reconciler.core.errors import InvalidArgument
from reconciler.core.units import parse_size

MIN_MEMORY = 6 * 1024 * 1024          # Docker's linuxMinMemory
NANO_CPUS_PERIOD = 100_000            # µs: the period Docker uses for --cpus
MIN_CPU_PERIOD, MAX_CPU_PERIOD = 1000, 1_000_000
MIN_CPU_QUOTA = 1000


@dataclass(frozen=True)
class Resources:
    memory: int = 0                 # bytes, 0 = unlimited
    memory_swap: int = 0            # memory + swap in bytes; -1 = unlimited swap, 0 = unset
    memory_reservation: int = 0     # soft limit in bytes, 0 = unset
    nano_cpus: int = 0              # 1e9 = one CPU, 0 = unset
    cpu_period: int = 0             # µs, 0 = unset
    cpu_quota: int = 0              # µs, 0 = unset, -1 = unlimited
    cpuset_cpus: str = ""           # "0-1,3", "" = any
    pids_limit: int | None = None   # None = unlimited

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Resources:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

    @property
    def is_unlimited(self) -> bool:
        return self == Resources()


MAX_CPUS = 8192                       # the kernel's largest NR_CPUS
_CPU_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")


def parse_cpu_list(text: str) -> set[int]:
    """Parse a cpuset list like "0-2,5" (Docker's ParseUintList). Raises ValueError."""
    cpus: set[int] = set()
    if text == "":
        return cpus
    for part in text.split(","):
        m = _CPU_RANGE.fullmatch(part)
        if not m:
            raise ValueError(f"invalid format: {text}")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) is not None else start
        if end < start:
            raise ValueError(f"invalid format: {text}")
        if end >= MAX_CPUS:
            raise ValueError(f"CPU {end} is beyond the kernel's limit of {MAX_CPUS} CPUs")
        cpus.update(range(start, end + 1))
    return cpus


def _int(value: Any, flag: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidArgument(f"{flag}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: '
                              f"not an integer") from None


def _size(value: Any, flag: str, allow_unlimited: bool = False) -> int | None:
    if value is None or value == "":
        return None
    if allow_unlimited and str(value).strip() == "-1":
        return -1
    return parse_size(value, flag)


def _nano_cpus(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        cpus = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise InvalidArgument(f'invalid argument "{value}" for "--cpus" flag: '
                              f"failed to parse {value} as a rational number") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise InvalidArgument(f'invalid argument "{value}" for "--cpus" flag: value is too precise')
    return int(nano)


def parse_resources(memory: Any = None, memory_swap: Any = None, cpus: Any = None,
                    cpu_period: Any = None, cpu_quota: Any = None, cpuset_cpus: str | None = None,
                    pids_limit: Any = None, memory_reservation: Any = None, *,
                    host_cpus: int, host_cpuset: str | None = None,
                    update: bool = False) -> Resources:
    """Validate Docker-style limit flags (strings as typed, or numbers) into Resources.

    host_cpus is the number of CPUs (Docker's runtime.NumCPU), host_cpuset the CPUs a
    container may be pinned to (the root cpuset's cpuset.cpus; defaults to 0..host_cpus-1).
    update=True validates a `docker update`: --memory-swap alone is then allowed.
    Raises InvalidArgument with Docker's message.
    """
    mem = _size(memory, "-m, --memory") or 0
    swap = _size(memory_swap, "--memory-swap", allow_unlimited=True) or 0
    reservation = _size(memory_reservation, "--memory-reservation") or 0
    nano = _nano_cpus(cpus) or 0
    period = _int(cpu_period, "--cpu-period") or 0
    quota = _int(cpu_quota, "--cpu-quota") or 0
    pids = _int(pids_limit, "--pids-limit")
    cpuset = (cpuset_cpus or "").strip()

    if mem != 0 and mem < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if mem > 0 and swap > 0 and swap < mem:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if mem == 0 and swap > 0 and not update:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, "
                              "see usage")
    if reservation > 0 and reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if mem > 0 and reservation > 0 and mem < reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, "
                              "see usage")

    if nano > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano != 0 and (nano < 0 or nano > host_cpus * 1_000_000_000):
        raise InvalidArgument(f"range of CPUs is from 0.01 to {host_cpus}.00, as there are only "
                              f"{host_cpus} CPUs available")
    if period != 0 and not MIN_CPU_PERIOD <= period <= MAX_CPU_PERIOD:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than "
                              "1s (i.e. 1000000)")
    if quota > 0 and quota < MIN_CPU_QUOTA:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")

    available = (host_cpuset or "").strip() or (f"0-{host_cpus - 1}" if host_cpus > 1 else "0")
    try:
        requested = parse_cpu_list(cpuset)
    except ValueError as e:
        raise InvalidArgument(f"Invalid value {cpuset} for cpuset cpus: {e}") from None
    if not requested <= parse_cpu_list(available):
        raise InvalidArgument(f"Requested CPUs are not available - requested {cpuset}, "
                              f"available: {available}")

    if mem > 0 and swap == 0 and not update:
        swap = 2 * mem                # Docker's default: as much swap as memory
    if pids is not None and pids <= 0:
        pids = None
    return Resources(memory=mem, memory_swap=swap, memory_reservation=reservation, nano_cpus=nano,
                     cpu_period=period, cpu_quota=quota, cpuset_cpus=cpuset, pids_limit=pids)


def cfs_quota_period(res: Resources) -> tuple[int, int]:
    """(quota, period) in µs as written to the cgroup; 0 means 'leave unset'."""
    if res.nano_cpus > 0:
        return res.nano_cpus * NANO_CPUS_PERIOD // 1_000_000_000, NANO_CPUS_PERIOD
    return res.cpu_quota, res.cpu_period


def to_oci_resources(res: Resources, swap_accounting: bool = True) -> dict[str, Any]:
    """The config.json linux.resources object runc applies (v1 and v2).

    memory.swap is memory+swap, as runc expects (it maps it to memory.memsw.limit_in_bytes on
    cgroup v1 and subtracts the memory on v2). Without swap accounting in the kernel (v1 with no
    memsw files) it is left out, as Docker does ("Memory limited without swap")."""
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if res.memory > 0:
        memory["limit"] = res.memory
    if res.memory_swap != 0 and swap_accounting:
        memory["swap"] = res.memory_swap
    if res.memory_reservation > 0:
        memory["reservation"] = res.memory_reservation
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    quota, period = cfs_quota_period(res)
    if quota != 0:
        cpu["quota"] = quota
    if period != 0:
        cpu["period"] = period
    if res.cpuset_cpus:
        cpu["cpus"] = res.cpuset_cpus
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit is not None:
        out["pids"] = {"limit": res.pids_limit}
    return out


def to_docker_hostconfig(res: Resources) -> dict[str, Any]:
    """The resource fields of `docker inspect`'s HostConfig."""
    return {
        "Memory": res.memory,
        "MemorySwap": res.memory_swap,
        "MemoryReservation": res.memory_reservation,
        "NanoCpus": res.nano_cpus,
        "CpuPeriod": res.cpu_period,
        "CpuQuota": res.cpu_quota,
        "CpusetCpus": res.cpuset_cpus,
        "PidsLimit": res.pids_limit,
    }
