"""engine.containers re-exports its modules' public names: each is the function or class, never
a submodule that happens to share its name (a submodule, once imported, would shadow it)."""

import importlib
import types

from reconciler.engine import containers


def test_every_exported_name_is_what_its_module_defines():
    for module in ("store", "sockets", "records", "options", "liveness", "reaping", "removal", "bundle", "creation",
                   "lifecycle", "exit_cleanup", "listing", "inspect", "update", "logs"):
        importlib.import_module(f"reconciler.engine.containers.{module}")   # as callers would
    for name in containers.__all__:
        value = getattr(containers, name)
        assert not isinstance(value, types.ModuleType), name
