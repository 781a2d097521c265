"""runc and conmon: create, start, signal, delete and update containers; read their state.

    bundle.py        the files of a container's bundle directory (config, pid, exit, log, attach)
    runc.py          Runtime: `runc` calls, and `runc create` through a conmon per container
    conmon.py        starting conmon and reading its sync pipe (containers and exec sessions)
    exec_session.py  `runc exec` through `conmon --exec` (loaded only by exec)
    foreground.py    a foreground `run` monitored by the CLI itself, and its log
    processes.py     pids that are safe against reuse (pid + start time)
"""

from reconciler.adapters.runtime.bundle import SUN_PATH_MAX, MonitorPaths, exit_file, read_int
from reconciler.adapters.runtime.foreground import AttachedRun, ContainerLog
from reconciler.adapters.runtime.processes import pid_alive, process_start_time, signal_pid
from reconciler.adapters.runtime.runc import SYNC_TIMEOUT, Runtime, classify_create_error

__all__ = [
    "SUN_PATH_MAX", "SYNC_TIMEOUT", "AttachedRun", "ContainerLog", "MonitorPaths", "Runtime",
    "classify_create_error", "exit_file", "pid_alive", "process_start_time", "read_int",
    "signal_pid",
]
