"""runc and conmon: create, start, signal, delete and update containers; read their state.

    bundle.py        the files of a container's bundle directory (config, pid, exit, log, attach)
    runc.py          Runtime: `runc` calls, and `runc create` through a conmon per container
    conmon.py        starting conmon and reading its sync pipe (containers and exec sessions)
    exec_session.py  `runc exec` through `conmon --exec` (loaded only by exec)
    foreground.py    a foreground `run` monitored by the CLI itself, and its log
    processes.py     pids that are safe against reuse (pid + start time)

The names below are importable from here; each is loaded from its module on first use, so a
command that only reads pids and exit files (`ps`) does not load subprocess, runc and conmon.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "bundle": ("SUN_PATH_MAX", "MonitorPaths", "exit_file", "read_int"),
    "foreground": ("AttachedRun", "ContainerLog"),
    "processes": ("pid_alive", "process_start_time", "signal_pid"),
    "runc": ("SYNC_TIMEOUT", "Runtime", "classify_create_error"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
