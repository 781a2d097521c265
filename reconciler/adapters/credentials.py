"""Registry credentials: docker-mini's own auth.json (written by `login`, mode 0600) and,
read-only, the user's Docker config (~/.docker/config.json `auths`, credsStore, credHelpers).

Both files use Docker's format: {"auths": {"<registry>": {"auth": base64("user:password")}}}.
Our own entries win over Docker's; Docker Hub's many spellings are one registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

from reconciler.core import basicauth
from reconciler.core.errors import AuthError, ConfigError, StorageError
from reconciler.core.reference import InvalidReference, display_server, registry_key

HELPER_TIMEOUT = 30


def default_docker_config() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def _decode_entry(entry: dict, source: Path, key: str) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            return basicauth.decode(entry["auth"])
        except ValueError as e:
            raise ConfigError(f"{source}: the auth entry for {key!r} {e}") from None
    if entry.get("username") and entry.get("password"):
        return str(entry["username"]), str(entry["password"])
    return None


class CredentialStore:
    def __init__(self, path: str | Path, files, docker_config: str | Path | None = None):
        self.path = Path(path)
        self.files = files  # the state-file writer (atomic JSON, 0600 from creation), given by the engine
        self.docker_config = Path(docker_config) if docker_config else default_docker_config()

    # -- reading

    def _load(self, path: Path, *, ours: bool) -> dict:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except PermissionError:
            if ours:
                raise
            return {}  # someone else's config we may not read: as if absent
        except (ValueError, UnicodeDecodeError) as e:
            error = StorageError if ours else ConfigError
            raise error(f"{path}: not valid JSON ({e})",
                        hint="fix or remove the file" + ("" if ours else " (it is Docker's client config)")) from None
        if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
            raise (StorageError if ours else ConfigError)(f"{path}: expected an object with an 'auths' object")
        return data

    @staticmethod
    def _find(auths: dict, key: str) -> tuple[str, dict] | None:
        for name, entry in auths.items():
            with contextlib.suppress(InvalidReference):
                if registry_key(name) == key:
                    return name, entry
        return None

    def get(self, host: str) -> tuple[str, str] | None:
        """(username, password) for a registry host, or None for anonymous access."""
        try:
            key = registry_key(host)
        except InvalidReference:
            return None
        own = self._find(self._load(self.path, ours=True).get("auths", {}), key)
        if own:
            return _decode_entry(own[1], self.path, own[0])
        docker = self._load(self.docker_config, ours=False)
        helper = (docker.get("credHelpers") or {}).get(display_server(key)) \
            or (docker.get("credHelpers") or {}).get(key)
        found = self._find(docker.get("auths", {}), key)
        if helper:
            return self._from_helper(helper, key)
        if found:
            creds = _decode_entry(found[1], self.docker_config, found[0])
            if creds:
                return creds
        if docker.get("credsStore"):
            return self._from_helper(docker["credsStore"], key, required=False)
        return None

    def _from_helper(self, helper: str, key: str, required: bool = True) -> tuple[str, str] | None:
        """Ask docker-credential-<helper> (Docker's credential helper protocol: `get`, server on stdin).
        A missing default store (a config copied from another OS) means anonymous; a missing helper
        named for this very registry is an error."""
        program = f"docker-credential-{helper}"
        try:
            proc = subprocess.run([program, "get"], input=display_server(key), capture_output=True,
                                  text=True, timeout=HELPER_TIMEOUT)
        except FileNotFoundError:
            if not required:
                return None
            raise AuthError(f"{self.docker_config} names credential helper {helper!r} for {key}, "
                            f"but {program} is not installed") from None
        except subprocess.TimeoutExpired:
            raise AuthError(f"{program} did not answer within {HELPER_TIMEOUT}s") from None
        if proc.returncode != 0:
            if "credentials not found" in (proc.stdout + proc.stderr).lower():
                return None
            raise AuthError(f"{program} get failed: {(proc.stderr or proc.stdout).strip()[:300]}")
        try:
            body = json.loads(proc.stdout)
            return str(body["Username"]), str(body["Secret"])
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"{program} get answered something that is not credentials") from None

    # -- writing (ours only; the caller holds the engine's mutation lock)

    def set(self, host: str, username: str, password: str) -> None:
        key = registry_key(host)
        data = self._load(self.path, ours=True)
        auths = data.setdefault("auths", {})
        old = self._find(auths, key)
        if old:
            del auths[old[0]]
        auths[key] = {"auth": basicauth.encode(username, password)}
        self.files.write_json(self.path, data)

    def remove(self, host: str) -> bool:
        """Forget our credentials for host; False when there were none."""
        key = registry_key(host)
        data = self._load(self.path, ours=True)
        found = self._find(data.get("auths", {}), key)
        if not found:
            return False
        del data["auths"][found[0]]
        self.files.write_json(self.path, data)
        return True

    def hosts(self) -> list[str]:
        """The registries we hold credentials for."""
        out = []
        for name in self._load(self.path, ours=True).get("auths", {}):
            with contextlib.suppress(InvalidReference):
                out.append(registry_key(name))
        return sorted(out)
