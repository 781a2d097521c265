"""Containers: their records and lifecycle, one module per concern, from the bottom up:

    options       CreateOptions (what create/run is asked for), validation, generated names
    records       ContainerRecord (with its RunState, NetworkEndpoint, ProcessConfig): the typed
                  content of container.json, with from_json/to_json and a format version
    store         container.json: load, save, ids, resolve, list
    sockets       conmon's attach sockets (and the short directory for long roots' symlinks)
    liveness      whether the process lives (current_state), signal, wait for the exit: read-only
    reaping       reap: an ended process's exit recorded, its runtime, network and mount released
    removal       rm: everything the container owns released and deleted
    bundle        the OCI config.json, from the record and the mounted rootfs
    creation      the record, network lease, rw layer and /etc files
    lifecycle     start, run_attached, stop, kill, restart, wait
    exit_cleanup  conmon's exit command: reap, then --rm or the restart policy
    listing, inspect, update, logs   ps, inspect, update, logs

engine.network and engine.images sit between store and reaping: they read records, and the
lifecycle calls them. liveness, below them, imports neither, so `ps` loads no networking.
pyproject.toml's import-linter contracts keep that order.

The names callers use are importable from here (`containers.start(...)`); each is loaded from
its module on first use, so `ps` does not load what create and start need.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "store": ("all_records", "load", "now_iso", "resolve", "unreadable_records"),
    "sockets": ("attach_socket_path",),
    "records": ("ContainerRecord", "NetworkEndpoint", "ProcessConfig", "RunState"),
    "options": ("CreateOptions", "generate_name"),
    "liveness": ("KILL_WAIT", "current_state", "is_running"),
    "reaping": ("reap",),
    "bundle": ("read_in_rootfs",),
    "creation": ("create",),
    "lifecycle": ("finish_attached", "kill", "restart", "run_attached", "start", "stop", "wait"),
    "removal": ("remove",),
    "exit_cleanup": ("FOREGROUND_LOCK", "ForegroundClaim", "cleanup", "foreground_attached"),
    "listing": ("ContainerState", "list_containers"),
    "inspect": ("inspect_container",),
    "update": ("update_resources",),
    "logs": ("LogLine", "read_logs"),
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
