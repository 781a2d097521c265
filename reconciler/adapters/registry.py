"""Registry protocol v2 client (requests): manifests and blobs, verified, with auth and retries.

Auth follows the distribution token spec: ping /v2/, read the WWW-Authenticate challenge, then
send Basic credentials or fetch a Bearer token from the challenge's realm (anonymous when we have
no credentials), cached per scope until it expires. Redirects are followed by hand so the
Authorization header never reaches another origin (blob redirects to object storage are common).

Plain HTTP only for loopback and configured insecure registries; everything else is HTTPS.
One client is shared by the engine's download threads: sessions are per thread, caches locked.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import ipaddress
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from reconciler.core.digest import digest_of, hasher_for, is_digest
from reconciler.core.errors import (
    AuthError, IntegrityError, RegistryError, RegistryUnreachable, RemoteNotFound, UnsupportedManifest,
)
from reconciler.core.manifest import (
    Descriptor, ImageManifest, Index, Platform, manifest_accept_header, parse_manifest,
    select_platform,
)
from reconciler.core.reference import Reference

USER_AGENT = "docker-mini/0.1"
MANIFEST_MAX = 4 << 20       # containerd's limit: a manifest is small JSON
CONFIG_MAX = 8 << 20         # an image config is small JSON too (history, env, labels)
MAX_REDIRECTS = 5
RETRY_AFTER_MAX = 60.0       # longer waits than this are reported, not slept through
CHUNK = 1 << 20
Credentials = Callable[[str], "tuple[str, str] | None"]


@dataclass(frozen=True)
class ResolvedImage:
    """The image manifest for one platform. When the reference named an index (manifest list),
    index_* hold it: its digest is what `RepoDigests` shows; manifest_digest is the instance's."""
    manifest_digest: str
    media_type: str
    raw: bytes
    manifest: ImageManifest
    index_digest: str | None = None
    index_media_type: str | None = None
    index_raw: bytes | None = None

    @property
    def repo_digest(self) -> str:
        return self.index_digest or self.manifest_digest


@dataclass(frozen=True)
class Challenge:
    scheme: str                 # "basic" or "bearer"
    params: dict


# --------------------------------------------------------------------------- challenges

_AUTH_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


def parse_challenges(header: str) -> list[Challenge]:
    """WWW-Authenticate: 'Bearer realm="...",service="...",scope="..."' (several may follow)."""
    challenges: list[Challenge] = []
    pos, header = 0, header or ""
    while pos < len(header):
        m = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)").match(header, pos)
        if not m:
            break
        scheme, pos, params = m.group(1).lower(), m.end(), {}
        while pos < len(header):
            p = _AUTH_PARAM.match(header, pos)
            if not p:
                break
            value = p.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[p.group(1).lower()] = value
            pos = p.end()
        challenges.append(Challenge(scheme, params))
    return challenges


# --------------------------------------------------------------------------- helpers

def is_loopback(host: str) -> bool:
    host = (host or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_host_port(domain: str) -> tuple[str, str | None]:
    if domain.startswith("["):
        host, _, rest = domain[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    host, _, port = domain.partition(":")
    return host, port or None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _registry_error(resp: requests.Response) -> str:
    """The registry's own error text ({"errors": [{"code", "message"}]}) or the HTTP status."""
    with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
        errors = resp.json()["errors"]
        return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errors)
    return f"HTTP {resp.status_code} {resp.reason or ''}".strip()


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


class _Token:
    __slots__ = ("value", "expires")

    def __init__(self, value: str, expires: float):
        self.value, self.expires = value, expires


# --------------------------------------------------------------------------- the client

class RegistryClient:
    def __init__(self, insecure: Iterable[str] = (), transformation: dict[str, str] | None = None,
                 credentials: Credentials | None = None, timeout: float = 30, *,
                 retries: int = 4, backoff: float = 0.25, user_agent: str = USER_AGENT):
        self.insecure = tuple(insecure or ())
        self.transformation = dict(transformation or {})
        self.credentials = credentials or (lambda domain: None)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.user_agent = user_agent
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._challenges: dict[str, list[Challenge]] = {}
        self._tokens: dict[tuple, _Token] = {}
        self._token_locks: dict[tuple, threading.Lock] = {}
        self._creds: dict[str, tuple[str, str] | None] = {}

    # -- plumbing

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = self.user_agent
            s.trust_env = False  # no proxies or .netrc credentials behind the user's back
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=8)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def host_for(self, domain: str) -> str:
        """The host[:port] actually contacted (registry-transformation applied)."""
        return self.transformation.get(domain, domain)

    def _insecure(self, domain: str, host: str) -> bool:
        for entry in self.insecure:
            if entry in (domain, host) or entry == _split_host_port(host)[0]:
                return True
            with contextlib.suppress(ValueError):
                net = ipaddress.ip_network(entry, strict=False)
                if ipaddress.ip_address(_split_host_port(host)[0]) in net:
                    return True
        return False

    def base_url(self, domain: str) -> str:
        host = self.host_for(domain)
        plain = is_loopback(_split_host_port(host)[0]) or self._insecure(domain, host)
        return f"{'http' if plain else 'https'}://{host}"

    def _send(self, method: str, url: str, *, headers: dict, auth_header: str | None,
              stream: bool = False, what: str, domain: str) -> requests.Response:
        """One request with retries (connection errors, 5xx, 429) and hand-followed redirects.
        Authorization only goes to the origin it was meant for."""
        attempt = 0
        while True:
            try:
                resp = self._follow(method, url, headers, auth_header, stream)
            except requests.exceptions.SSLError as e:
                raise RegistryUnreachable(
                    f"TLS handshake with {urlsplit(url).netloc} failed while fetching {what}: {_reason(e)}",
                    hint=f"if {domain} serves plain HTTP, add it to insecure-registries in the config") from None
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt >= self.retries:
                    raise RegistryUnreachable(
                        f"cannot reach registry {domain} at {urlsplit(url).scheme}://{urlsplit(url).netloc} "
                        f"({_reason(e)}; tried {attempt + 1} times)",
                        hint="check that the registry is running and the address is right") from None
                self._sleep(attempt)
                attempt += 1
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                if attempt >= self.retries:
                    raise RegistryError(f"registry {domain} kept failing while fetching {what}: "
                                        f"{_registry_error(resp)} (tried {attempt + 1} times)")
                wait = _retry_after(resp) if resp.status_code in (429, 503) else None
                resp.close()
                if wait is not None and wait > RETRY_AFTER_MAX:
                    raise RegistryError(f"registry {domain} is rate-limiting us: retry after {wait:.0f}s")
                self._sleep(attempt, wait)
                attempt += 1
                continue
            return resp

    def _follow(self, method: str, url: str, headers: dict, auth_header: str | None,
                stream: bool) -> requests.Response:
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            h = dict(headers)
            if auth_header and _origin(url) == origin:
                h["Authorization"] = auth_header
            resp = self._session().request(method, url, headers=h, stream=stream, allow_redirects=False,
                                           timeout=(self.timeout, self.timeout))
            if resp.status_code not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                return resp
            url = urljoin(url, resp.headers["Location"])
            resp.close()
        raise RegistryError(f"too many redirects fetching {url}")

    def _sleep(self, attempt: int, wait: float | None = None) -> None:
        if wait is None:
            wait = min(self.backoff * (2 ** attempt), 8.0) * (0.75 + random.random() / 2)
        time.sleep(wait)

    # -- auth

    def _credentials_for(self, domain: str) -> tuple[str, str] | None:
        """Looked up once per registry for the client's life (one pull), not once per blob."""
        with self._lock:
            if domain in self._creds:
                return self._creds[domain]
        creds = self.credentials(domain)
        with self._lock:
            self._creds[domain] = creds
        return creds

    def _challenges_for(self, domain: str) -> list[Challenge]:
        base = self.base_url(domain)
        with self._lock:
            if base in self._challenges:
                return self._challenges[base]
        resp = self._send("GET", f"{base}/v2/", headers={}, auth_header=None, what="/v2/", domain=domain)
        resp.close()
        if resp.status_code == 401:
            challenges = parse_challenges(resp.headers.get("WWW-Authenticate", ""))
        elif resp.status_code == 200:
            challenges = []
        elif resp.status_code == 404:
            raise RegistryError(f"{domain} ({base}) does not speak the registry v2 protocol (/v2/ is 404)")
        else:
            raise RegistryError(f"registry {domain} answered /v2/ with {_registry_error(resp)}")
        with self._lock:
            self._challenges[base] = challenges
        return challenges

    def _auth_header(self, domain: str, scope: str, challenges: list[Challenge],
                     creds: tuple[str, str] | None, fresh: bool = False) -> str | None:
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            return "Bearer " + self._token(domain, bearer, scope, creds, fresh)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if basic is not None and creds:
            return _basic(*creds)
        return None

    def _token(self, domain: str, challenge: Challenge, scope: str | None,
               creds: tuple[str, str] | None, fresh: bool = False) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(f"registry {domain} asked for a bearer token without saying where (no realm)")
        service = challenge.params.get("service")
        key = (realm, service, scope, creds[0] if creds else None)
        with self._lock:
            lock = self._token_locks.setdefault(key, threading.Lock())
        with lock:  # one fetch per scope even when many download threads ask at once
            with self._lock:
                cached = self._tokens.get(key)
            if cached and not fresh and cached.expires > time.monotonic():
                return cached.value
            realm_parts = urlsplit(realm)
            if creds and realm_parts.scheme != "https" and not is_loopback(realm_parts.hostname or "") \
                    and not self._insecure(realm_parts.netloc, realm_parts.netloc):
                raise AuthError(f"{domain}: refusing to send credentials to the token server {realm} "
                                f"over plain HTTP", hint="the realm must be https (or an insecure registry)")
            query = {k: v for k, v in (("service", service), ("scope", scope)) if v}
            if creds:
                query["account"] = creds[0]
            url = realm + ("&" if "?" in realm else "?") + urlencode(query)
            resp = self._send("GET", url, headers={}, auth_header=_basic(*creds)
                              if creds else None, what="an auth token", domain=domain)
            if resp.status_code in (401, 403):
                raise AuthError(f"{domain}: the token server refused "
                                + (f"the credentials of {creds[0]!r}" if creds else "anonymous access")
                                + f" ({_registry_error(resp)})",
                                hint=None if creds else f"log in first: docker-mini login {domain}")
            if resp.status_code != 200:
                raise RegistryError(f"{domain}: token server {urlsplit(realm).netloc} answered "
                                    f"{_registry_error(resp)}")
            try:
                body = resp.json()
                token = body.get("token") or body.get("access_token")
                lifetime = float(body.get("expires_in") or 60)
            except (ValueError, AttributeError, TypeError):
                token, lifetime = None, 0
            if not token or not isinstance(token, str):
                raise RegistryError(f"{domain}: token server {urlsplit(realm).netloc} sent no token")
            # renew a little early: the registry must still accept it when the request arrives
            expires = time.monotonic() + max(lifetime - max(5.0, lifetime * 0.1), 0)
            with self._lock:
                self._tokens[key] = _Token(token, expires)
            return token

    def _request(self, ref: Reference, method: str, path: str, *, headers: dict | None = None,
                 stream: bool = False, what: str) -> requests.Response:
        """An authorized request for ref's repository (pull scope). 401 -> new token once -> AuthError."""
        domain = ref.domain
        url = f"{self.base_url(domain)}/v2/{ref.path}/{path}"
        scope = f"repository:{ref.path}:pull"
        creds = self._credentials_for(domain)
        challenges = self._challenges_for(domain)
        for retry_auth in (False, True):
            auth = self._auth_header(domain, scope, challenges, creds, fresh=retry_auth)
            resp = self._send(method, url, headers=headers or {}, auth_header=auth, stream=stream,
                              what=what, domain=domain)
            if resp.status_code != 401:
                break
            fresh = parse_challenges(resp.headers.get("WWW-Authenticate", ""))
            denied = _registry_error(resp)
            resp.close()
            if retry_auth or not fresh:
                break
            challenges = fresh
            if any(c.scheme == "bearer" and c.params.get("scope") for c in fresh):
                scope = next(c.params["scope"] for c in fresh if c.scheme == "bearer" and c.params.get("scope"))
            with self._lock:
                self._challenges[self.base_url(domain)] = [
                    Challenge(c.scheme, {k: v for k, v in c.params.items() if k not in ("scope", "error")})
                    for c in fresh]
        if resp.status_code in (401, 403):
            if resp.status_code == 403:
                denied = _registry_error(resp)
                resp.close()
            name = ref.familiar_name()
            if creds:
                raise AuthError(f"access to {name} denied for user {creds[0]!r} ({denied})",
                                hint=f"check the credentials with `docker-mini login {domain}`")
            raise AuthError(f"pull access denied for {name}: the repository does not exist or needs "
                            f"credentials ({denied})",
                            hint=f"docker-mini login {domain}")
        return resp

    # -- credentials check (for `login`)

    def verify_credentials(self, domain: str, username: str, password: str) -> None:
        """Raise AuthError unless the registry accepts these credentials."""
        creds = (username, password)
        challenges = self._challenges_for(domain)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            self._token(domain, bearer, None, creds, fresh=True)
            return
        if not challenges:
            return  # the registry needs no credentials: any are "accepted", as with Docker
        resp = self._send("GET", f"{self.base_url(domain)}/v2/", headers={},
                          auth_header=_basic(*creds), what="/v2/", domain=domain)
        resp.close()
        if resp.status_code in (401, 403):
            raise AuthError(f"{domain} refused the credentials of {username!r}")
        if resp.status_code != 200:
            raise RegistryError(f"registry {domain} answered the login with {_registry_error(resp)}")

    # -- manifests

    def _get_manifest(self, ref: Reference, target: str, accept: str) -> tuple[bytes, str, str | None]:
        shown = f"{ref.familiar_name()}{'@' if ':' in target else ':'}{target}"   # a digest or a tag
        resp = self._request(ref, "GET", f"manifests/{target}", headers={"Accept": accept},
                             stream=True, what=f"the manifest of {shown}")
        try:
            if resp.status_code == 404:
                raise RemoteNotFound(f"{shown} not found in {ref.domain}: {_registry_error(resp)}")
            if resp.status_code != 200:
                raise RegistryError(f"{ref.domain} answered the manifest request for {ref.familiar()} "
                                    f"with {_registry_error(resp)}")
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MANIFEST_MAX:
                raise RegistryError(f"the manifest of {ref.familiar()} is {declared} bytes; "
                                    f"more than {MANIFEST_MAX} is not a real manifest")
            raw = resp.raw.read(MANIFEST_MAX + 1, decode_content=True)
            if len(raw) > MANIFEST_MAX:
                raise RegistryError(f"the manifest of {ref.familiar()} is larger than {MANIFEST_MAX} bytes")
            return raw, resp.headers.get("Content-Type", ""), resp.headers.get("Docker-Content-Digest")
        except (requests.RequestException, OSError) as e:
            raise RegistryUnreachable(f"{ref.domain}: connection lost reading a manifest ({_reason(e)})") from None
        finally:
            resp.close()

    @staticmethod
    def _check_manifest_digest(ref: Reference, raw: bytes, expected: str, what: str) -> None:
        actual = digest_of(raw, expected.split(":", 1)[0])
        if actual != expected:
            raise IntegrityError(f"{what} of {ref.familiar_name()} does not match its digest: "
                                 f"expected {expected}, got {actual}")

    def resolve(self, ref: Reference, platform: Platform) -> ResolvedImage:
        """The image manifest of `ref` for `platform` (chosen from an index), every digest checked."""
        target = ref.pull_target
        raw, media_type, header_digest = self._get_manifest(ref, target, manifest_accept_header())
        if ref.digest:
            self._check_manifest_digest(ref, raw, ref.digest, "the manifest")
            digest = ref.digest
        else:
            if header_digest and not is_digest(header_digest):
                header_digest = None
            digest = digest_of(raw, header_digest.split(":", 1)[0] if header_digest else "sha256")
            if header_digest and digest != header_digest:
                raise IntegrityError(f"the manifest of {ref.familiar()} does not match the digest the registry "
                                     f"announced: expected {header_digest}, got {digest}")
        parsed = parse_manifest(raw, media_type)
        index_digest = index_media_type = index_raw = None
        depth = 0
        while isinstance(parsed, Index):
            depth += 1
            if depth > 2:
                raise UnsupportedManifest(f"{ref.familiar()}: indexes nested more than two levels deep")
            chosen: Descriptor = select_platform_for(ref, parsed, platform)
            if index_digest is None:
                index_digest, index_media_type, index_raw = digest, parsed.media_type, raw
            raw, media_type, _ = self._get_manifest(ref, chosen.digest, chosen.media_type + ", "
                                                    + manifest_accept_header())
            if len(raw) != chosen.size:
                raise IntegrityError(f"the {chosen.platform} manifest of {ref.familiar()} is {len(raw)} bytes; "
                                     f"the index says {chosen.size}")
            self._check_manifest_digest(ref, raw, chosen.digest, f"the {chosen.platform} manifest")
            digest = chosen.digest
            parsed = parse_manifest(raw, media_type or chosen.media_type)
        return ResolvedImage(manifest_digest=digest, media_type=parsed.media_type, raw=raw, manifest=parsed,
                             index_digest=index_digest, index_media_type=index_media_type, index_raw=index_raw)

    # -- blobs

    def fetch_blob(self, ref: Reference, descriptor: Descriptor) -> bytes:
        """A small blob (the image config), size and digest verified. Read whole into memory,
        so a manifest declaring a huge one is refused before anything is read."""
        if descriptor.size > CONFIG_MAX:
            raise IntegrityError(f"{ref.familiar()}: the manifest declares a {descriptor.size}-byte "
                                 f"config blob; more than {CONFIG_MAX} is not a real image config")
        with self.open_blob(ref, descriptor) as blob:
            return blob.read()

    @contextlib.contextmanager
    def open_blob(self, ref: Reference, descriptor: Descriptor) -> Iterator["BlobReader"]:
        """A verified stream of a blob: read(n) until b"". A wrong size or digest raises
        IntegrityError from the read that completes the blob; leaving the block normally drains
        and checks what the caller did not read."""
        reader = BlobReader(self, ref, descriptor)
        try:
            yield reader
            reader.finish()
        finally:
            reader.close()

    def _open_blob_response(self, ref: Reference, descriptor: Descriptor, offset: int) -> requests.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        what = f"blob {descriptor.digest[:19]} of {ref.familiar_name()}"
        resp = self._request(ref, "GET", f"blobs/{descriptor.digest}", headers=headers, stream=True, what=what)
        if resp.status_code == 404 and descriptor.urls:
            resp.close()
            for url in descriptor.urls:  # foreign layers: fetched from where the manifest says, no creds
                resp = self._send("GET", url, headers=headers, auth_header=None, stream=True, what=what,
                                  domain=urlsplit(url).netloc)
                if resp.status_code in (200, 206):
                    break
        if resp.status_code == 404:
            message = f"{what} not found in {ref.domain} ({_registry_error(resp)})"
            resp.close()
            raise RemoteNotFound(message)
        if resp.status_code == 416:
            resp.close()
            raise IntegrityError(f"{what} ends before byte {offset}: it is shorter than the "
                                 f"{descriptor.size} bytes its descriptor declares")
        total = _announced_total(resp)
        if total is not None and total != descriptor.size:
            resp.close()
            raise IntegrityError(f"{what} is {total} bytes in {ref.domain}; its descriptor declares "
                                 f"{descriptor.size}", hint="the registry's copy is corrupt or truncated")
        if resp.status_code not in (200, 206):
            message = f"{ref.domain} answered the request for {what} with {_registry_error(resp)}"
            resp.close()
            raise RegistryError(message)
        return resp


def _announced_total(resp: requests.Response) -> int | None:
    """The blob's full length as the server states it (Content-Length of a 200, Content-Range of a 206)."""
    if resp.status_code == 206:
        m = re.match(r"bytes \d+-\d+/(\d+)", resp.headers.get("Content-Range", ""))
        return int(m.group(1)) if m else None
    length = resp.headers.get("Content-Length")
    if resp.status_code == 200 and length and length.isdigit() and "Content-Encoding" not in resp.headers:
        return int(length)
    return None


def select_platform_for(ref: Reference, index: Index, platform: Platform) -> Descriptor:
    try:
        return select_platform(index, platform)
    except UnsupportedManifest as e:
        raise UnsupportedManifest(f"{ref.familiar()}: {e.message}", hint=e.hint) from None


def _reason(e: BaseException) -> str:
    """The innermost readable cause of a requests/urllib3 exception."""
    text = str(e)
    for pattern in (r"\[Errno -?\d+\] ([^'\")]+)", r"(Connection refused)", r"(timed out)", r"(Name or service not known)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip()
    return text[:200]


class BlobReader:
    """Streams one blob, hashing as it goes; resumes with a Range request when a connection drops."""

    def __init__(self, client: RegistryClient, ref: Reference, descriptor: Descriptor):
        self.client, self.ref, self.descriptor = client, ref, descriptor
        self.size = descriptor.size
        self.bytes_read = 0
        self._hash = hasher_for(descriptor.digest)
        self._verified = False
        self._resumes = 0
        self._resp = client._open_blob_response(ref, descriptor, 0)

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes (all that is left when n < 0); b"" once the verified blob is exhausted."""
        if self.bytes_read >= self.size:
            self._verify()
            return b""
        if n is None or n < 0:
            parts = []
            while self.bytes_read < self.size:
                parts.append(self._read_some(self.size - self.bytes_read))
            return b"".join(parts)
        return self._read_some(min(n, self.size - self.bytes_read)) if n else b""

    def _read_some(self, want: int) -> bytes:
        """At least one byte and at most `want`, hashed; resumes the download if the stream broke."""
        while True:
            error: Exception | None = None
            try:
                chunk = self._resp.raw.read(min(want, CHUNK), decode_content=False)
            except Exception as e:  # urllib3 ProtocolError / ReadTimeoutError, OSError: resume below
                chunk, error = b"", e
            if chunk:
                self._hash.update(chunk)
                self.bytes_read += len(chunk)
                if self.bytes_read >= self.size:
                    self._verify()
                return chunk
            self._resume(error)

    def _resume(self, error: BaseException | None) -> None:
        """The stream ended early: ask again from where we are (Range), a few times."""
        if self._resumes >= self.client.retries:
            raise IntegrityError(
                f"blob {self.descriptor.digest} of {self.ref.familiar_name()} ended after {self.bytes_read} "
                f"of {self.size} bytes" + (f" ({_reason(error)})" if error else ""))
        self._resumes += 1
        self._resp.close()
        self.client._sleep(self._resumes - 1)
        resp = self.client._open_blob_response(self.ref, self.descriptor, self.bytes_read)
        if resp.status_code == 200 and self.bytes_read:
            skip = self.bytes_read  # the server ignored Range: skip what we already have
            while skip:
                chunk = resp.raw.read(min(skip, CHUNK), decode_content=False)
                if not chunk:
                    break
                skip -= len(chunk)
        self._resp = resp

    def _verify(self) -> None:
        if self._verified:
            return
        actual = f"{self.descriptor.digest.split(':', 1)[0]}:{self._hash.hexdigest()}"
        if actual != self.descriptor.digest:
            raise IntegrityError(f"blob of {self.ref.familiar_name()} does not match its digest: "
                                 f"expected {self.descriptor.digest}, got {actual}",
                                 hint="the registry's copy is corrupt or was altered in transit")
        extra = b""
        with contextlib.suppress(Exception):  # anything past the declared size is a lie too
            extra = self._resp.raw.read(1, decode_content=False)
        if extra:
            raise IntegrityError(f"blob {self.descriptor.digest} of {self.ref.familiar_name()} is larger "
                                     f"than the {self.size} bytes its descriptor declares")
        self._verified = True

    def finish(self) -> None:
        """Read and check whatever the caller left unread."""
        while not self._verified:
            self.read(CHUNK)

    def close(self) -> None:
        self._resp.close()

    @property
    def verified(self) -> bool:
        return self._verified
