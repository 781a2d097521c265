"""The one exception tree. Every error carries a message a user can act on.

Only reconciler.cli turns these into exit codes.
"""

from __future__ import annotations


class DockerMiniError(Exception):
    """Base of every error docker-mini raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(DockerMiniError):
    """The configuration file is unreadable or has a bad key or value."""


class InvalidArgument(DockerMiniError):
    """A command-line flag or value is malformed or conflicts with another."""


class SpecError(DockerMiniError):
    """A stack spec is invalid. Carries file, line and key path when known."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 path: str | None = None, hint: str | None = None):
        where = ""
        if file:
            where = file + (f":{line}" if line else "")
        if path:
            where = f"{where} {path}" if where else path
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.file, self.line, self.path = file, line, path


class InvalidReference(InvalidArgument):
    """An image reference does not follow the distribution reference grammar."""


class RegistryError(DockerMiniError):
    """The registry answered with an error or broke the protocol."""


class RegistryUnreachable(RegistryError):
    """The registry could not be contacted at all."""


class AuthError(RegistryError):
    """The registry refused our credentials (or wants some we do not have)."""


class RemoteNotFound(RegistryError):
    """The repository, tag or digest does not exist in the registry."""


class IntegrityError(RegistryError):
    """Content does not match its digest, size or diff_id."""


class UnsupportedManifest(RegistryError):
    """A manifest type we refuse (schema1) or a platform the image lacks."""


class ImageNotFound(DockerMiniError):
    """No local image matches the name or id."""


class ImageInUse(DockerMiniError):
    """The image is used by a container and cannot be removed."""


class ContainerNotFound(DockerMiniError):
    """No container matches the name or id."""


class NetworkNotFound(DockerMiniError):
    """No network matches the name or id."""


class ConflictError(DockerMiniError):
    """The request conflicts with current state (name taken, container running, port in use...)."""


class StorageError(DockerMiniError):
    """Something went wrong with layers, overlay mounts or quotas on disk."""


class UnsafeArchive(StorageError):
    """A layer tried to write outside its directory (absolute path, .., link escape)."""


class QuotaUnsupported(StorageError):
    """A disk quota was asked for but no mechanism works on this host."""


class ContainerRuntimeError(DockerMiniError):
    """runc or conmon failed."""


class CommandNotFound(ContainerRuntimeError):
    """The container's command does not exist (Docker exits 127)."""


class CommandNotExecutable(ContainerRuntimeError):
    """The container's command exists but cannot be executed (Docker exits 126)."""


class ExecFailed(ContainerRuntimeError):
    """conmon or `runc exec` failed to run an exec session's command; .message is runc's (or
    conmon's) own text, which the engine reads to tell not running, not found and not executable."""


class ContainerNotRunning(ConflictError):
    """The operation needs a running container."""


class NetworkError(DockerMiniError):
    """Bridge, veth, address, IPAM or nftables setup failed or was refused."""


class LockTimeout(DockerMiniError):
    """Another docker-mini process held the state lock for too long."""
