"""Image references as Docker parses them (the distribution/reference grammar). Pure.

    reference  := name [":" tag] ["@" digest]
    name       := [domain "/"] path-component ("/" path-component)*
    domain     := host [":" port]          host: DNS name, IPv4, or [IPv6]
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*      separator: "." "_" "__" "-"+
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}

The first component is a domain only if it contains "." or ":", is "localhost", or has an
uppercase letter; otherwise the default host (docker.io) is meant, where single-component
names live under "library/". The whole canonical name is at most 255 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.core.digest import validate_digest
from reconciler.core.errors import InvalidArgument, InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255
TAG_MAX = 128

# The grammar's pieces (distribution/reference's regexp.go), ASCII only.
_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_HEX64 = re.compile(r"[a-f0-9]{64}")


def _is_domain(text: str) -> bool:
    """host[:port]: host is DNS labels ([a-zA-Z0-9] with inner '-') joined by '.', or [IPv6]."""
    return _DOMAIN.fullmatch(text) is not None


def _is_path_component(text: str) -> bool:
    """[a-z0-9]+ runs joined by one separator: '.', '_', '__' or any number of '-'."""
    return _PATH_COMPONENT.fullmatch(text) is not None


def _is_tag(text: str) -> bool:
    return len(text) <= TAG_MAX and _TAG.fullmatch(text) is not None


def _is_hex64(text: str) -> bool:
    return _HEX64.fullmatch(text) is not None


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def pull_target(self) -> str:
        """What to ask the registry for: the digest when there is one (it wins), else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def familiar_name(self) -> str:
        """The name as Docker shows it: "busybox", "user/app", "127.0.0.1:5000/x/y"."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
                return self.path[len(OFFICIAL_PREFIX):]
            return self.path
        return self.name

    def familiar(self) -> str:
        return self.familiar_name() + self._suffix()

    def with_tag(self, tag: str | None) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.domain, self.path, None, digest)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def _fail(text: str, why: str) -> InvalidReference:
    return InvalidReference(f"invalid reference format {text!r}: {why}",
                            hint="references look like NAME[:TAG][@DIGEST], e.g. busybox:1.36, "
                                 "ghcr.io/owner/app@sha256:<64 hex>, localhost:5000/team/app")


def split_domain(name: str, default_host: str = DEFAULT_DOMAIN) -> tuple[str, str]:
    """(domain, remainder) as Docker splits a name; remainder keeps any tag/digest."""
    first, slash, rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"
                     and first.lower() == first):
        domain, remainder = default_host, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_reference(text: str, default_host: str = DEFAULT_DOMAIN) -> Reference:
    """Parse a user's image reference; tag defaults to "latest" when neither tag nor digest is given."""
    if not isinstance(text, str) or not text:
        raise _fail(str(text), "the reference is empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise _fail(text, "it contains whitespace")
    if _is_hex64(text):
        raise _fail(text, "a 64-character hexadecimal string is an image ID, not a repository name")

    name_and_tag, at, digest = text.partition("@")
    if at:
        if not digest:
            raise _fail(text, "nothing follows '@' (expected a digest such as sha256:<64 hex>)")
        try:
            validate_digest(digest)
        except InvalidArgument as e:
            raise _fail(text, e.message) from None

    domain, remainder = split_domain(name_and_tag, default_host)
    # a tag follows the last ':' of the path part (a ':' in the domain is the port)
    path, colon, tag = remainder.rpartition(":") if ":" in remainder else (remainder, "", "")
    if "/" in tag:  # the ':' belonged to something else (only possible with a malformed name)
        raise _fail(text, f"{tag!r} is not a valid tag")
    if colon and not tag:
        raise _fail(text, "nothing follows ':' (expected a tag)")

    if not _is_domain(domain):
        raise _fail(text, f"{domain!r} is not a valid registry host[:port]")
    port = domain.rpartition(":")[2] if not domain.endswith("]") and ":" in domain else None
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise _fail(text, f"port {port!r} of registry {domain!r} is out of range")

    if not path:
        raise _fail(text, "the repository name is empty")
    if path.lower() != path:
        raise _fail(text, f"repository name {path!r} must be lowercase")
    for component in path.split("/"):
        if not component:
            raise _fail(text, f"repository name {path!r} has an empty path component")
        if not _is_path_component(component):
            raise _fail(text, f"repository name component {component!r} may only contain lowercase "
                              f"letters, digits and separators ('.', '_', '__', '-') between them")

    if colon:
        if len(tag) > TAG_MAX:
            raise _fail(text, f"the tag is {len(tag)} characters; at most {TAG_MAX} are allowed")
        if not _is_tag(tag):
            raise _fail(text, f"tag {tag!r} may only contain letters, digits, '_', '.' and '-' "
                              f"and must not start with '.' or '-'")

    full_name = f"{domain}/{path}"
    if len(full_name) > NAME_MAX:
        raise _fail(text, f"repository name is {len(full_name)} characters; at most {NAME_MAX} are allowed")

    if not colon and not at:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag or None, digest=digest or None)


_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def registry_key(server: str) -> str:
    """The registry a login or a credentials entry is for, as host[:port]: drops a scheme and a
    path ("https://index.docker.io/v1/" -> "docker.io"), folds Docker Hub's aliases."""
    text = (server or "").strip()
    lowered = text.lower()
    for scheme in ("https://", "http://"):
        if lowered.startswith(scheme):
            text = text[len(scheme):]
            break
    host = text.split("/", 1)[0]
    if not host or not _is_domain(host):
        raise InvalidReference(f"invalid registry address {server!r}: expected host[:port], "
                               f"e.g. registry.example.com or localhost:5000")
    host = host.lower()
    return DEFAULT_DOMAIN if host in _HUB_ALIASES else host


def display_server(key: str) -> str:
    """How Docker names a registry in login/logout messages (Docker Hub by its v1 index URL)."""
    return "https://index.docker.io/v1/" if key == DEFAULT_DOMAIN else key
