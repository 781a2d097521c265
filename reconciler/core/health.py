"""Healthchecks, pure: what to run (the image's HEALTHCHECK merged with the spec's), when, and
what a probe's result does to the container's health (Docker's rules and JSON shape).

    starting --probe exits 0--> healthy
    starting/healthy --`retries` failures in a row--> unhealthy (a probe that exits 0 heals it)
    failures while starting within start_period do not count (once healthy, every one does)

Times are epoch seconds (time.time()); durations seconds. The Log keeps the last 5 results.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Mapping

NS = 1_000_000_000
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
LOG_KEEP = 5
OUTPUT_MAX = 4096           # bytes of a probe's output kept, as Docker

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


class HealthcheckError(ValueError):
    """A healthcheck test that is not one of Docker's forms."""


def probe_command(test: Any) -> tuple[str, ...] | None:
    """The argv a test runs: ["CMD", args...] as is, ["CMD-SHELL", cmd] or a plain string
    through /bin/sh -c; None for ["NONE"] (disabled) and an empty test (inherit)."""
    if test is None or test == [] or test == ():
        return None
    if isinstance(test, str):
        return ("/bin/sh", "-c", test)
    if not isinstance(test, (list, tuple)) or not all(isinstance(t, str) for t in test):
        raise HealthcheckError("healthcheck test must be a string or a list of strings")
    kind, args = test[0], tuple(test[1:])
    if kind == "NONE":
        return None
    if kind == "CMD":
        if not args:
            raise HealthcheckError("healthcheck test [CMD] needs a command")
        return args
    if kind == "CMD-SHELL":
        if len(args) != 1:
            raise HealthcheckError("healthcheck test [CMD-SHELL, ...] takes exactly one command string")
        return ("/bin/sh", "-c", args[0])
    raise HealthcheckError(f"healthcheck test must start with CMD, CMD-SHELL or NONE, not {kind!r}")


@dataclass(frozen=True)
class HealthConfig:
    command: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0


def _disabled(test: Any) -> bool:
    return isinstance(test, (list, tuple)) and len(test) > 0 and test[0] == "NONE"


def merge(image: Mapping | None, spec: Mapping | None) -> HealthConfig | None:
    """The healthcheck a container runs. image: the image config's Healthcheck (Docker's
    {Test, Interval, Timeout, Retries, StartPeriod}, durations in ns); spec: the spec's
    {test, interval, timeout, retries, start_period (seconds), disable}. As Docker, the spec's
    fields override the image's one by one; disable (or a NONE test) turns it off."""
    image, spec = image or {}, spec or {}
    if spec.get("disable"):
        return None
    test = spec.get("test")
    if test is None or test == []:
        test = image.get("Test")
    if _disabled(test):
        return None
    command = probe_command(test)
    if command is None:
        return None

    def seconds(spec_key: str, image_key: str, default: float) -> float:
        if spec.get(spec_key):
            return float(spec[spec_key])
        if image.get(image_key):
            return image[image_key] / NS
        return default

    retries = spec.get("retries") or image.get("Retries") or DEFAULT_RETRIES
    return HealthConfig(command=command, interval=seconds("interval", "Interval", DEFAULT_INTERVAL),
                        timeout=seconds("timeout", "Timeout", DEFAULT_TIMEOUT), retries=int(retries),
                        start_period=seconds("start_period", "StartPeriod", 0.0))


# --- results and state ---------------------------------------------------------------------------


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class ProbeResult:
    start: float
    end: float
    exit_code: int                   # -1: it did not finish in time (or could not run)
    output: str = ""

    def to_docker(self) -> dict:
        return {"Start": rfc3339(self.start), "End": rfc3339(self.end), "ExitCode": self.exit_code,
                "Output": self.output}

    @classmethod
    def from_docker(cls, d: Mapping) -> ProbeResult:
        return cls(epoch(d["Start"]), epoch(d["End"]), int(d["ExitCode"]), str(d.get("Output", "")))


def timed_out(start: float, end: float, timeout: float) -> ProbeResult:
    return ProbeResult(start, end, -1, f"Health check exceeded timeout ({timeout:g}s)")


def clip_output(data: bytes) -> str:
    return data[:OUTPUT_MAX].decode(errors="replace")


@dataclass(frozen=True)
class HealthState:
    """The health of one run of a container (started_at: that run's StartedAt, RFC 3339):
    a new run starts over."""
    started_at: str
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[ProbeResult, ...] = ()

    def to_docker(self) -> dict:
        return {"Status": self.status, "FailingStreak": self.failing_streak,
                "Log": [r.to_docker() for r in self.log]}

    def to_json(self) -> dict:
        return {"StartedAt": self.started_at, **self.to_docker()}

    @classmethod
    def from_json(cls, d: Mapping) -> HealthState:
        """ValueError/KeyError/TypeError when `d` is no such state."""
        status = d["Status"]
        if status not in (STARTING, HEALTHY, UNHEALTHY):
            raise ValueError(f"unknown health status {status!r}")
        return cls(started_at=str(d["StartedAt"]), status=status, failing_streak=int(d["FailingStreak"]),
                   log=tuple(ProbeResult.from_docker(r) for r in d.get("Log") or ()))

    @property
    def last_end(self) -> float | None:
        return self.log[-1].end if self.log else None


def after_probe(state: HealthState, result: ProbeResult, config: HealthConfig, run_started: float) -> HealthState:
    """The state once `result` is in (run_started: when the container's process started)."""
    log = (state.log + (result,))[-LOG_KEEP:]
    if result.exit_code == 0:
        return replace(state, status=HEALTHY, failing_streak=0, log=log)
    if state.status == STARTING and result.start - run_started < config.start_period:
        return replace(state, log=log)           # still starting: the failure does not count
    streak = state.failing_streak + 1
    status = UNHEALTHY if streak >= config.retries else state.status
    return replace(state, status=status, failing_streak=streak, log=log)


def next_probe(state: HealthState, config: HealthConfig, run_started: float) -> float:
    """When the next probe is due: an interval after the last one ended, the first an interval
    after the start (as Docker)."""
    last = state.last_end
    return (last if last is not None else run_started) + config.interval


def ps_suffix(status: str | None) -> str:
    """What `ps` adds after `Up 5 seconds`."""
    return {STARTING: " (health: starting)", HEALTHY: " (healthy)", UNHEALTHY: " (unhealthy)"}.get(status or "", "")
