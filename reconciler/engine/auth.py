"""`login` and `logout`: check credentials against the registry, then keep or forget them.

Credentials live in the root's auth.json (0600, Docker's format); pulls also read the user's
~/.docker/config.json. Nothing is stored unless the registry accepted the credentials.
"""

from __future__ import annotations

from reconciler.core.errors import InvalidArgument
from reconciler.core.reference import display_server, registry_key


def server_key(engine, server: str | None) -> str:
    """The registry a login is for: the given server (URL or host[:port]) or the default host."""
    return registry_key(server if server else engine.config.default_host)


def login(engine, server: str | None, username: str, password: str) -> str:
    """Verify and store credentials for a registry; returns the registry's key (host[:port])."""
    key = server_key(engine, server)
    if not username:
        raise InvalidArgument("login: a username is required")
    if not password:
        raise InvalidArgument("login: a password is required (use --password-stdin to pass it safely)")
    if ":" in username:
        raise InvalidArgument("login: a username cannot contain ':'")
    engine.registry.verify_credentials(key, username, password)
    with engine.mutation():
        engine.credentials.set(key, username, password)
    return key


def logout(engine, server: str | None) -> str | None:
    """Forget stored credentials; returns the registry as Docker names it, or None if we held
    none (credentials in ~/.docker/config.json belong to Docker and are left alone)."""
    key = server_key(engine, server)
    with engine.mutation():
        removed = engine.credentials.remove(key)
    return display_server(key) if removed else None


def logged_in(engine) -> list[str]:
    """The registries docker-mini holds credentials for."""
    return engine.credentials.hosts()
