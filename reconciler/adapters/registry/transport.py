"""HTTP to a registry: sessions per thread, retries with backoff, redirects followed by hand so
the Authorization header never reaches another origin (blob redirects to object storage are
common). Plain HTTP only for loopback and configured insecure registries; everything else is HTTPS.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import random
import re
import threading
import time
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

import requests

from reconciler.core.errors import RegistryError, RegistryUnreachable

USER_AGENT = "docker-mini/0.1"
MAX_REDIRECTS = 5
RETRY_AFTER_MAX = 60.0       # longer waits than this are reported, not slept through
Credentials = Callable[[str], "tuple[str, str] | None"]


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


def registry_error(resp: requests.Response) -> str:
    """The registry's own error text ({"errors": [{"code", "message"}]}) or the HTTP status."""
    with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
        errors = resp.json()["errors"]
        return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errors)
    return f"HTTP {resp.status_code} {resp.reason or ''}".strip()


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


def reason(e: BaseException) -> str:
    """The innermost readable cause of a requests/urllib3 exception."""
    text = str(e)
    for pattern in (r"\[Errno -?\d+\] ([^'\")]+)", r"(Connection refused)", r"(timed out)", r"(Name or service not known)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip()
    return text[:200]


class Transport:
    """The plumbing under RegistryClient. One instance is shared by the engine's download
    threads: sessions are per thread, caches locked."""

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
                    f"TLS handshake with {urlsplit(url).netloc} failed while fetching {what}: {reason(e)}",
                    hint=f"if {domain} serves plain HTTP, add it to insecure-registries in the config") from None
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt >= self.retries:
                    raise RegistryUnreachable(
                        f"cannot reach registry {domain} at {urlsplit(url).scheme}://{urlsplit(url).netloc} "
                        f"({reason(e)}; tried {attempt + 1} times)",
                        hint="check that the registry is running and the address is right") from None
                self._sleep(attempt)
                attempt += 1
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                if attempt >= self.retries:
                    raise RegistryError(f"registry {domain} kept failing while fetching {what}: "
                                        f"{registry_error(resp)} (tried {attempt + 1} times)")
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
