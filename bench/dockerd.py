"""A private Docker 20.10 engine for the benchmarks: started for one run, gone afterwards.

    with private_dockerd(work / "docker") as docker:
        docker.run("pull", ref)                 # the client (Debian's /usr/bin/docker 20.10)
        subprocess.run(["docker-compose", ...], env=docker.env)

dockerd gets its own --data-root, --exec-root, --pidfile, socket (DOCKER_HOST in docker.env),
daemon.json (so /etc/docker/daemon.json is not read), trust key, cgroup parent, and a bridge subnet
(--bip, --default-address-pool) in a private block that no route or address on this machine uses
and that is outside 10.0.0.0/8, where docker-mini's tests and benchmarks put their bridges.
Afterwards, whatever happened, it removes what it made: its containers and processes, the mounts
under its roots, docker0 and the br-* bridges and veths it created, the iptables rules and chains
it added (and the ip filter/nat tables, where they did not exist before), its cgroups, /run/docker
and the directories themselves. It refuses to start next to another Docker engine (docker0 exists).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import unmount_under

DOCKERD = "/usr/sbin/dockerd"
# Debian's docker.io client; another `docker` earlier on PATH (e.g. a newer static CLI) is not it
DOCKER = "/usr/bin/docker"
BRIDGE = "docker0"
# /20 blocks tried in order: the first that overlaps nothing on this machine is used
CANDIDATE_BLOCKS = ["172.29.128.0/20", "172.30.240.0/20", "172.28.224.0/20", "192.168.224.0/20"]
DOCKER_MINI_SPACE = ipaddress.IPv4Network("10.0.0.0/8")
SYSCTLS = ["net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"]


class DockerUnavailable(RuntimeError):
    """The private engine could not be started here; the message says why."""


@dataclass
class Dockerd:
    work: Path
    block: ipaddress.IPv4Network
    proc: subprocess.Popen | None = None
    env: dict = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.work / "docker.sock"

    @property
    def bip(self) -> str:
        """The default bridge's gateway address: the block's first /24."""
        first = next(self.block.subnets(new_prefix=24))
        return f"{first.network_address + 1}/24"

    @property
    def compose_subnet(self) -> ipaddress.IPv4Network:
        """A subnet for a compose file's own network: the block's second /24."""
        return list(self.block.subnets(new_prefix=24))[1]

    @property
    def address_pool(self) -> ipaddress.IPv4Network:
        """Where dockerd picks subnets for networks created without one: the block's upper half."""
        return list(self.block.subnets(new_prefix=self.block.prefixlen + 1))[1]

    @property
    def cgroup_parent(self) -> str:
        return f"dmbench-docker-{os.getpid()}"

    def cli(self, *args: str) -> list[str]:
        return [DOCKER, "-H", f"unix://{self.socket}", *args]

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.cli(*args), capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return proc


# --------------------------------------------------------------------------- host state

def _host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route (all tables) and address on this machine."""
    nets = []
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                                       capture_output=True, text=True, check=True).stdout or "[]")
    for r in routes:
        dst = r.get("dst", "")
        if dst and dst != "default" and r.get("type", "unicast") in ("unicast", "local", "broadcast"):
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    addrs = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True,
                                      check=True).stdout or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def pick_block() -> ipaddress.IPv4Network:
    used = [n for n in _host_networks() if not n.is_loopback]
    for cidr in CANDIDATE_BLOCKS:
        block = ipaddress.IPv4Network(cidr)
        if block.overlaps(DOCKER_MINI_SPACE):
            continue
        if not any(block.overlaps(n) for n in used):
            return block
    raise DockerUnavailable(f"every candidate block {CANDIDATE_BLOCKS} overlaps a route or address here")


def _links() -> dict[str, dict]:
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    return {link["ifname"]: link for link in json.loads(out or "[]")}


def _nft_tables() -> set[tuple[str, str]]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {tuple(line.split()[1:3]) for line in out.splitlines() if line.startswith("table ")}


def _read_sysctls() -> dict[str, str]:
    out = {}
    for key in SYSCTLS:
        with contextlib.suppress(OSError):
            out[key] = Path("/proc/sys", key).read_text().strip()
    return out


@dataclass
class XtTable:
    """One table of an iptables-save dump: chain policies (or '-') and the rules, in order."""
    chains: dict[str, str] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)


def _xtables(tool: str) -> dict[str, XtTable]:
    proc = subprocess.run([tool], capture_output=True, text=True)
    tables: dict[str, XtTable] = {}
    current = None
    for line in proc.stdout.splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:].strip(), XtTable())
        elif current is None:
            continue
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            current.chains[name] = policy
        elif line.startswith("-A "):
            current.rules.append(line[3:])
    return tables


@dataclass
class HostSnapshot:
    """What the host had before dockerd started, to take back exactly what it added."""
    links: set[str]
    nft_tables: set[tuple[str, str]]
    xtables: dict[str, dict[str, XtTable]]
    sysctls: dict[str, str]
    paths: dict[Path, bool]

    @classmethod
    def take(cls, key_file: Path | None = None) -> "HostSnapshot":
        """The host now; with key_file (dockerd's), also the paths dockerd may create."""
        paths = (Path("/run/docker"), Path("/etc/docker/key.json"), key_file) if key_file else ()
        return cls(links=set(_links()), nft_tables=_nft_tables(),
                   xtables={tool: _xtables(f"{tool}-save") for tool in ("iptables", "ip6tables")},
                   sysctls=_read_sysctls(), paths={p: p.exists() for p in paths})


# --------------------------------------------------------------------------- start and stop

def _start(d: Dockerd) -> None:
    d.work.mkdir(parents=True, exist_ok=True)
    config = d.work / "daemon.json"
    # the trust key 20.10 would write to /etc/docker/key.json goes under our work dir
    config.write_text(json.dumps({"deprecated-key-path": str(d.work / "key.json")}))
    log = open(d.work / "dockerd.log", "wb")
    cmd = [DOCKERD, "--config-file", str(config),
           "--data-root", str(d.work / "data"), "--exec-root", str(d.work / "exec"),
           "--pidfile", str(d.work / "docker.pid"), "-H", f"unix://{d.socket}",
           "--bip", d.bip, "--default-address-pool", f"base={d.address_pool},size=24",
           "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", f"/{d.cgroup_parent}",
           "--storage-driver", "overlay2", "--log-level", "warn"]
    d.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            raise DockerUnavailable(f"dockerd exited {d.proc.returncode}: "
                                    f"{(d.work / 'dockerd.log').read_text(errors='replace')[-2000:]}")
        if d.socket.exists() and subprocess.run(d.cli("version"), capture_output=True,
                                                env=d.env).returncode == 0:
            return
        time.sleep(0.2)
    raise DockerUnavailable("dockerd did not answer within 60 s")


def _pids_under(path: Path) -> list[int]:
    """Processes whose command line names a path under `path`: dockerd's containerd and shims."""
    needle = str(path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


def _cgroup_dirs(parent: str) -> list[Path]:
    """Our cgroup parent in every v1 hierarchy (and the unified one), deepest first."""
    found = []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / parent
        if top.is_dir():
            found += sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            found.append(top)
    return found


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _stop(d: Dockerd) -> list[str]:
    """Stop dockerd and everything it started; what had to be forced, for the report."""
    notes = []
    if d.proc and d.proc.poll() is None:
        with contextlib.suppress(Exception):
            ids = d.run("ps", "-aq", check=False, timeout=60).stdout.split()
            if ids:
                d.run("rm", "-f", *ids, check=False, timeout=300)
            d.run("network", "prune", "-f", check=False, timeout=60)
        d.proc.send_signal(signal.SIGTERM)
        try:
            d.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            notes.append("dockerd ignored SIGTERM for 60 s: killed")
            d.proc.kill()
            d.proc.wait()
    # containerd and shims, then the containers' own processes, by the cgroups we gave them
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids_under(d.work)
        if not pids:
            break
        notes.append(f"{len(pids)} process(es) of dockerd left after it stopped: signal {sig.name}")
        _kill(pids, sig)
        time.sleep(1)
    for cg in _cgroup_dirs(d.cgroup_parent):
        with contextlib.suppress(OSError):
            _kill([int(p) for p in (cg / "cgroup.procs").read_text().split()], signal.SIGKILL)
    time.sleep(0.2)
    for cg in _cgroup_dirs(d.cgroup_parent):
        with contextlib.suppress(OSError):
            cg.rmdir()
    return notes


@dataclass(frozen=True)
class Footprint:
    """What an engine adds to the host, by name: its links, the iptables rules naming it, the
    chains it makes. Only what matches, and was not there before, is taken back."""
    links: str
    rules: str
    chains: str


DOCKER_FOOTPRINT = Footprint(links=r"docker0|br-[0-9a-f]{12}|veth[0-9a-f]{7}",
                             rules=r"DOCKER|\bdocker0\b|\bbr-[0-9a-f]{12}\b",   # every rule dockerd adds names one
                             chains="DOCKER")


def restore_host(before: HostSnapshot, footprint: Footprint = DOCKER_FOOTPRINT) -> list[str]:
    """Take back what an engine added since `before`; notes on what had been changed."""
    notes = []
    links = _links()
    made = [name for name in links if name not in before.links and re.fullmatch(footprint.links, name)]
    for name in sorted(made, key=lambda n: not n.startswith("veth")):   # veths first, then bridges
        subprocess.run(["ip", "link", "del", name], capture_output=True)
    ours = re.compile(footprint.rules)
    for tool, tables_before in before.xtables.items():
        after = _xtables(f"{tool}-save")
        for table, now in after.items():
            was = tables_before.get(table, XtTable())
            remaining = list(was.rules)
            for rule in now.rules:
                if rule in remaining:
                    remaining.remove(rule)
                elif ours.search(rule):
                    subprocess.run([tool, "-t", table, "-D", *shlex.split(rule)], capture_output=True)
            for chain, policy in now.chains.items():
                if chain not in was.chains and policy == "-" and chain.startswith(footprint.chains):
                    subprocess.run([tool, "-t", table, "-F", chain], capture_output=True)
                    subprocess.run([tool, "-t", table, "-X", chain], capture_output=True)
                elif policy != "-" and was.chains.get(chain, "ACCEPT") != policy:
                    notes.append(f"{tool} {table} {chain} policy was {policy}: set back")
                    subprocess.run([tool, "-t", table, "-P", chain, was.chains.get(chain, "ACCEPT")],
                                   capture_output=True)
    # the iptables-nft tables docker's rules brought into being, now empty again
    family = {"iptables": "ip", "ip6tables": "ip6"}
    for tool, fam in family.items():
        left = _xtables(f"{tool}-save")
        for table, now in left.items():
            if (fam, table) not in before.nft_tables and not now.rules and \
                    all(p in ("ACCEPT", "-") for p in now.chains.values()):
                subprocess.run(["nft", "delete", "table", fam, table], capture_output=True)
    for key, value in before.sysctls.items():
        path = Path("/proc/sys", key)
        with contextlib.suppress(OSError):
            if path.read_text().strip() != value:
                notes.append(f"sysctl {key} was changed: set back to {value}")
                path.write_text(value)
    for path, existed in before.paths.items():
        if not existed and path.exists():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return notes


@contextlib.contextmanager
def private_dockerd(work: Path):
    """A running private dockerd (a Dockerd), stopped and cleaned up on the way out."""
    for binary in (DOCKERD, DOCKER):
        if not Path(binary).exists():
            raise DockerUnavailable(f"{binary} is not installed (make deps-bench installs docker.io)")
    if BRIDGE in _links():
        raise DockerUnavailable(f"{BRIDGE} exists: another Docker engine runs here, or a killed bench "
                                f"left it (`ip link del {BRIDGE}` after checking); not starting a second one")
    d = Dockerd(work=Path(work), block=pick_block())
    d.env = {**os.environ, "DOCKER_HOST": f"unix://{d.socket}", "DOCKER_CONFIG": str(d.work / "client")}
    before = HostSnapshot.take(d.work / "key.json")
    try:
        _start(d)
        yield d
    finally:
        notes = _stop(d)
        unmount_under(d.work)
        notes += restore_host(before)
        shutil.rmtree(d.work, ignore_errors=True)
        for note in notes:
            print(f"  docker cleanup: {note}")


def optional_dockerd(stack: contextlib.ExitStack, work: Path, label: str = "docker", pull: str | None = None,
                     compose_missing: str | None = None) -> tuple[Dockerd | None, str | None]:
    """The bench's Docker peer, entered on stack: private_dockerd(work), with `pull` pulled into it;
    when docker (or docker-compose, if compose_missing gives the reason to report) is unavailable,
    prints "<label>: not measured: <why>" and returns (the dockerd if it had started, why)."""
    docker = None
    try:
        if compose_missing is not None and not shutil.which("docker-compose"):
            raise DockerUnavailable(compose_missing)
        docker = stack.enter_context(private_dockerd(work))
        if pull is not None:
            docker.run("pull", "-q", pull)      # 127.0.0.0/8 registries are insecure-allowed
    except DockerUnavailable as e:
        print(f"{label}: not measured: {e}")
        return docker, str(e)
    return docker, None
