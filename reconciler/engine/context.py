"""The engine's composition root: root directory, configuration and the mutation lock.

Operations live in sibling modules (images, containers, network, stacks) as functions
taking an Engine; adapters are constructed here, lazily, so a command pays only for what it uses.
"""

from __future__ import annotations

import contextlib
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Iterator

from reconciler.adapters import statedb
from reconciler.core.config import Config
from reconciler.core.errors import LockTimeout
from reconciler.core.layout import Layout


class Engine:
    def __init__(self, root: str | Path, config: Config):
        self.root = Path(root)
        self.config = config
        self.layout = Layout(self.root)
        self._lock_depth = 0
        self._thread_lock = threading.RLock()

    def ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    @contextlib.contextmanager
    def mutation(self, timeout: float = 120.0) -> Iterator[None]:
        """The one exclusive lock for every change of state.

        Re-entrant for the thread that holds it; other threads of this process wait on the
        in-process lock (flock is per open file, so it cannot tell our own threads apart),
        other processes on the flock.
        """
        if not self._thread_lock.acquire(timeout=timeout):
            raise LockTimeout(f"another thread held the state lock for over {timeout:.0f}s")
        try:
            if self._lock_depth:
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            self.ensure_root()
            with statedb.locked(self.layout.lock_file, timeout=timeout):
                self._lock_depth = 1
                try:
                    yield
                finally:
                    self._lock_depth = 0
        finally:
            self._thread_lock.release()

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
        return CredentialStore(self.layout.auth_file)

    @cached_property
    def registry(self):
        from reconciler.adapters.registry import RegistryClient
        return RegistryClient(insecure=self.config.insecure_registries,
                              transformation=self.config.registry_transformation,
                              credentials=self.credentials.get)
