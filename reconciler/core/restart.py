"""Restart policies, decided in one place. Pure: no I/O, no clock (callers pass the time).

Used by the plan (which exited stack containers the watcher starts again), the watcher (when:
its backoff), and the container exit path (`run --restart`, conmon's exit command).

Docker's policies: no, always, unless-stopped, on-failure[:max-retries]. A container stopped by
hand (`stop`, or a `kill` that ends it) is not restarted by any policy until it is started again.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.errors import InvalidArgument

NAMES = ("no", "always", "unless-stopped", "on-failure")

# the watcher's backoff between restarts of one stack container
FIRST_DELAY = 1.0          # seconds before the second restart
MAX_DELAY = 300.0          # doubling up to this
CLEAN_RUN_RESET = 600.0    # a container that ran this long after its last restart starts over

# the exit path's backoff (`run --restart`): as Docker's daemon, 100 ms doubling, at most 5 s
EXIT_FIRST_DELAY = 0.1
EXIT_MAX_DELAY = 5.0


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"
    max_retries: int = 0               # on-failure only; 0: unlimited

    @classmethod
    def parse(cls, text: str | None) -> RestartPolicy:
        """'no', 'always', 'unless-stopped', 'on-failure', 'on-failure:3'; None or '' is 'no'."""
        text = (text or "no").strip()
        name, colon, count = text.partition(":")
        if name not in NAMES:
            raise InvalidArgument(f"invalid restart policy {text!r}",
                                  hint="use no, always, unless-stopped or on-failure[:max-retries]")
        if colon:
            if name != "on-failure" or not count.isdigit():
                raise InvalidArgument(f"invalid restart policy {text!r}: only on-failure takes a retry count")
            return cls(name, int(count))
        return cls(name)

    def __str__(self) -> str:
        return f"{self.name}:{self.max_retries}" if self.max_retries else self.name


def should_restart(policy: RestartPolicy, exit_code: int | None, restart_count: int = 0,
                   manually_stopped: bool = False) -> bool:
    """Whether a container that exited with `exit_code` (None: unknown), restarted
    `restart_count` times already, is started again by its policy."""
    if manually_stopped or policy.name == "no":
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    # on-failure
    if exit_code in (0, None):
        return False
    return not (policy.max_retries and restart_count >= policy.max_retries)


def next_delay(previous: float | None) -> float:
    """The watcher's wait before the next restart, after one that waited `previous` (None: the
    first restart since a clean run)."""
    return FIRST_DELAY if previous is None else min(previous * 2, MAX_DELAY)


def backoff_expired(last_restart: float, delay: float, now: float) -> bool:
    """A container that has run CLEAN_RUN_RESET seconds since its restart's wait ended starts over."""
    return now - last_restart > CLEAN_RUN_RESET + delay


def exit_delay(restart_count: int) -> float:
    """The exit path's wait before its `restart_count`-th restart (1, 2, ...)."""
    return min(EXIT_FIRST_DELAY * (2 ** min(restart_count, 6)), EXIT_MAX_DELAY)
