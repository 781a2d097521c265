"""The container's process in the OCI config: command, env, cwd, hostname and stop signal from the
image config and the user's overrides (Docker's rules). Pure.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from reconciler.core.errors import InvalidArgument

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_STOP_SIGNAL = "SIGTERM"
DEFAULT_STOP_TIMEOUT = 10

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "POLL": 29, "PWR": 30, "SYS": 31,
}


def parse_signal(value: str | int) -> int:
    """'SIGTERM', 'TERM', 'term', '15', 'RTMIN+3' -> signal number (Docker's spellings)."""
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        n = int(text)
        if 1 <= n <= 64:
            return n
        raise InvalidArgument(f"invalid signal: {value}")
    name = text.upper().removeprefix("SIG")
    if name in SIGNALS:
        return SIGNALS[name]
    m = re.fullmatch(r"RTMIN(?:\+(\d+))?|RTMAX(?:-(\d+))?", name)
    if m:
        n = 34 + int(m.group(1) or 0) if name.startswith("RTMIN") else 64 - int(m.group(2) or 0)
        if 34 <= n <= 64:
            return n
    raise InvalidArgument(f"invalid signal: {value}")


@dataclass
class ProcessSpec:
    args: list[str]
    env: list[str]
    cwd: str
    user: str                   # as asked ("" = image default root)
    hostname: str
    stop_signal: str
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Later entries replace earlier ones with the same key, keeping the first position."""
    out: dict[str, str] = {}
    for item in [*base, *overrides]:
        out[_env_key(item)] = item
    return list(out.values())


_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?")


def is_hostname(host: str) -> bool:
    """Letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63."""
    return _HOSTNAME.fullmatch(host) is not None


def process_spec(image_config: dict, *, container_id: str, command: list[str] | None,
                 entrypoint: list[str] | None, env: list[str], workdir: str | None,
                 user: str | None, hostname: str | None, stop_signal: str | None,
                 tty: bool) -> ProcessSpec:
    """What runs, with which env, where: the image config with the user's overrides (Docker's rules)."""
    cfg = image_config.get("config") or image_config.get("Config") or {}
    img_entry = list(cfg.get("Entrypoint") or [])
    img_cmd = list(cfg.get("Cmd") or [])
    if entrypoint is not None:
        entry = list(entrypoint)
        cmd = list(command) if command else []        # a new entrypoint resets the image's Cmd
    else:
        entry = img_entry
        cmd = list(command) if command else img_cmd
    args = entry + cmd
    if not args:
        raise InvalidArgument("no command specified: the image has no Entrypoint or Cmd; give a command")
    host = hostname or container_id[:12]
    if not is_hostname(host):
        raise InvalidArgument(f"invalid hostname {host!r}: letters, digits, '-' and '.', at most 63")
    base_env = list(cfg.get("Env") or [])
    if not any(_env_key(e) == "PATH" for e in [*base_env, *env]):
        base_env.insert(0, f"PATH={DEFAULT_PATH}")
    base_env.append(f"HOSTNAME={host}")
    if tty:
        base_env.append("TERM=xterm")
    merged = merge_env(base_env, env)
    cwd = workdir if workdir is not None else (cfg.get("WorkingDir") or "/")
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory {cwd!r} is invalid, it needs to be an absolute path")
    signal = stop_signal or cfg.get("StopSignal") or DEFAULT_STOP_SIGNAL
    parse_signal(signal)
    return ProcessSpec(args=args, env=merged, cwd=posixpath.normpath(cwd),
                       user=user if user is not None else (cfg.get("User") or ""),
                       hostname=host, stop_signal=signal, entrypoint=entry, cmd=cmd)
