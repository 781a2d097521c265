"""The files of one container's bundle directory, where runc and conmon keep what they know.

    config.json       the OCI config                 conmon.pid   conmon's pid
    pidfile           the container's init pid       exits/<id>   exit status ("137"), by conmon
    ctr.log           k8s-file log (conmon)          oom          created by conmon on an OOM event
    attach            conmon's attach socket (SEQPACKET; first byte of each message: 2 stdout,
                      3 stderr; what a client writes goes to the container's stdin)
    ctl               fifo: "1 HEIGHT WIDTH\\n" resizes the terminal, "2 0 0\\n" reopens the log
    runc.log          runc's own log (json) for a foreground run without conmon
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUN_PATH_MAX = 107      # the longest unix socket path: a longer attach path needs a socket dir


@dataclass(frozen=True)
class MonitorPaths:
    bundle: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "bundle", Path(self.bundle))

    @property
    def config(self) -> Path:
        return self.bundle / "config.json"

    @property
    def pidfile(self) -> Path:
        return self.bundle / "pidfile"

    @property
    def conmon_pidfile(self) -> Path:
        return self.bundle / "conmon.pid"

    @property
    def log(self) -> Path:
        return self.bundle / "ctr.log"

    @property
    def exit_dir(self) -> Path:
        return self.bundle / "exits"

    @property
    def oom(self) -> Path:
        return self.bundle / "oom"

    @property
    def ctl(self) -> Path:
        return self.bundle / "ctl"

    @property
    def attach(self) -> Path:
        return self.bundle / "attach"

    @property
    def runc_log(self) -> Path:
        return self.bundle / "runc.log"


def exit_file(paths: MonitorPaths, container_id: str) -> Path:
    return paths.exit_dir / container_id


def read_int(path: str | os.PathLike) -> int | None:
    """The integer a pid or exit file holds; None if there is none (yet)."""
    try:
        return int(Path(path).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
