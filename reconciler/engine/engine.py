"""The engine's composition root: root directory, configuration, the mutation lock and adapters.

Operations live in sibling modules (images, containers, network, stacks) as functions taking an
Engine. Every adapter they use is handed out here, made on first use so a command pays only for
what it touches: no other engine module imports reconciler.adapters.
"""

from __future__ import annotations

import contextvars
import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

from reconciler.adapters import statefiles
from reconciler.core.config import Config
from reconciler.core.errors import LockTimeout
from reconciler.core.layout import Layout

T = TypeVar("T")


class Engine:
    # adapters, made on first use (below)
    _images = _layers = _runtime = _credentials = _registry = None

    def __init__(self, root: str | os.PathLike, config: Config):
        self.layout = Layout(root)
        self.root = self.layout.root            # normalized: "/x/" and "/x" are one root
        self.config = config
        # thread id of the lock's holder, seen by the holder and by the workers it delegates to
        self._holder: contextvars.ContextVar[int | None] = contextvars.ContextVar(
            f"docker-mini-lock-{id(self)}", default=None)
        self._delegates = threading.RLock()
        self.network_batch = None       # engine.network.batch(): work done once at a batch's end

    def ensure_root(self) -> None:
        root = Path(self.root)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)

    def mutation(self, timeout: float = 120.0) -> _Mutation:
        """The one exclusive lock for every change of state (a context manager).

        The first entry takes the flock (other processes, and other operations of this process,
        wait: flock is per open file). Nested entries pass through. Threads started on the
        holder's behalf with `self.delegate(fn)` run inside the holder's lock, one mutation at a
        time among themselves.
        """
        return _Mutation(self, timeout)

    def delegate(self, fn: Callable[..., T]) -> Callable[..., T]:
        """Wrap `fn` for a worker thread so it acts under the caller's lock, if it holds one."""
        holder = self._holder.get()

        def on_behalf(*args, **kwargs):
            token = self._holder.set(holder)
            try:
                return fn(*args, **kwargs)
            finally:
                self._holder.reset(token)

        return on_behalf

    # adapters that are modules of functions, handed out as such

    @property
    def state_files(self):
        """Atomic JSON state files and the engine lock (adapters.statefiles)."""
        return statefiles

    @property
    def overlay(self):
        """Rootfs mounts, rw layers and tree removal (adapters.overlay)."""
        from reconciler.adapters import overlay
        return overlay

    @property
    def cgroups(self):
        """cgroup v1/v2 reads and clean-up (adapters.cgroups)."""
        from reconciler.adapters import cgroups
        return cgroups

    @property
    def netlink(self):
        """Bridge, veth, netns and nftables (adapters.network: loads pyroute2)."""
        from reconciler.adapters import network
        return network

    @property
    def processes(self):
        """Process and monitor-file helpers of the runtime adapter: pid_alive, signal_pid,
        exit_file, read_int, MonitorPaths, ContainerLog... (adapters.runtime)."""
        from reconciler.adapters import runtime
        return runtime

    @property
    def attach_client(self):
        """conmon's attach socket client and terminal handling (adapters.attach)."""
        from reconciler.adapters import attach
        return attach

    # adapters with state, made once

    @property
    def images(self):
        if self._images is None:
            from reconciler.adapters.imagestore import ImageStore
            self._images = ImageStore(self.layout, statefiles, self.config.default_host)
        return self._images

    @property
    def layers(self):
        if self._layers is None:
            from reconciler.adapters.layerstore import LayerStore
            self._layers = LayerStore(self.layout, statefiles, max_layer_size=self.config.max_layer_size,
                                      config_source=self.config.source)
        return self._layers

    @property
    def runtime(self):
        if self._runtime is None:
            from reconciler.adapters.runtime import Runtime
            self._runtime = Runtime(self.config.runtime, self.config.conmon, self.layout.runc_root,
                                    self.config.log_max_size)
        return self._runtime

    @property
    def credentials(self):
        if self._credentials is None:
            from reconciler.adapters.credentials import CredentialStore
            self._credentials = CredentialStore(self.layout.auth_file, statefiles)
        return self._credentials

    @property
    def registry(self):
        if self._registry is None:
            from reconciler.adapters.registry import RegistryClient
            self._registry = RegistryClient(insecure=self.config.insecure_registries,
                                            transformation=self.config.registry_transformation,
                                            credentials=self.credentials.get)
        return self._registry


class _Mutation:
    """Engine.mutation()'s context manager (re-entrant for the holder, shared with its delegates)."""
    __slots__ = ("engine", "timeout", "held", "lock", "token")

    def __init__(self, engine: Engine, timeout: float):
        self.engine, self.timeout = engine, timeout
        self.held = None        # "nested" | "delegate" | "flock", once entered

    def __enter__(self) -> None:
        engine = self.engine
        holder = engine._holder.get()
        if holder is not None:
            if holder == threading.get_ident():
                self.held = "nested"
                return
            if not engine._delegates.acquire(timeout=self.timeout):
                raise LockTimeout(f"another worker held the state lock for over {self.timeout:.0f}s")
            self.held = "delegate"
            return
        engine.ensure_root()
        self.lock = statefiles.locked(engine.layout.lock_file, timeout=self.timeout)
        self.lock.__enter__()
        self.token = engine._holder.set(threading.get_ident())
        self.held = "flock"

    def __exit__(self, *exc) -> None:
        if self.held == "delegate":
            self.engine._delegates.release()
        elif self.held == "flock":
            try:
                self.engine._holder.reset(self.token)
            finally:
                self.lock.__exit__(*exc)
