"""The engine's composition root: root directory, configuration and the mutation lock.

Operations live in sibling modules (images, containers, network, stacks) as functions
taking an Engine; adapters are constructed here, lazily, so a command pays only for what it uses.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import _thread     # threading's primitives without the module: ~1.5 ms less on every command
from functools import cached_property
from pathlib import Path

from reconciler.adapters import statedb
from reconciler.core.config import Config
from reconciler.core.errors import LockTimeout
from reconciler.core.layout import Layout

TYPE_CHECKING = False     # typing costs ~3 ms to import; annotations here are only strings
if TYPE_CHECKING:
    from typing import Callable, Iterator, TypeVar
    T = TypeVar("T")


class Engine:
    def __init__(self, root: str | Path, config: Config):
        self.root = Path(root)
        self.config = config
        self.layout = Layout(self.root)
        # thread id of the lock's holder, seen by the holder and by the workers it delegates to
        self._holder: contextvars.ContextVar[int | None] = contextvars.ContextVar(
            f"docker-mini-lock-{id(self)}", default=None)
        self._delegates = _thread.RLock()

    def ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    @contextlib.contextmanager
    def mutation(self, timeout: float = 120.0) -> Iterator[None]:
        """The one exclusive lock for every change of state.

        The first entry takes the flock (other processes, and other operations of this process,
        wait: flock is per open file). Nested entries pass through. Threads started on the
        holder's behalf with `self.delegate(fn)` run inside the holder's lock, one mutation at a
        time among themselves.
        """
        holder = self._holder.get()
        if holder is not None:
            if holder == _thread.get_ident():
                yield
                return
            if not self._delegates.acquire(timeout=timeout):
                raise LockTimeout(f"another worker held the state lock for over {timeout:.0f}s")
            try:
                yield
            finally:
                self._delegates.release()
            return
        self.ensure_root()
        with statedb.locked(self.layout.lock_file, timeout=timeout):
            token = self._holder.set(_thread.get_ident())
            try:
                yield
            finally:
                self._holder.reset(token)

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

    @cached_property
    def images(self):
        from reconciler.adapters.imagestore import ImageStore
        return ImageStore(self.layout, statedb, self.config.default_host)

    @cached_property
    def layers(self):
        from reconciler.adapters.layerstore import LayerStore
        return LayerStore(self.layout, statedb)

    @cached_property
    def runtime(self):
        from reconciler.adapters.runtime import Runtime
        return Runtime(self.config.runtime, self.config.conmon, self.layout.runc_root,
                       self.config.log_max_size)

    @cached_property
    def credentials(self):
        from reconciler.adapters.credentials import CredentialStore
        return CredentialStore(self.layout.auth_file, statedb)

    @cached_property
    def registry(self):
        from reconciler.adapters.registry import RegistryClient
        return RegistryClient(insecure=self.config.insecure_registries,
                              transformation=self.config.registry_transformation,
                              credentials=self.credentials.get)
