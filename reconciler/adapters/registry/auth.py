"""Registry auth, as the distribution token spec has it: ping /v2/, read the WWW-Authenticate
challenge, then send Basic credentials or fetch a Bearer token from the challenge's realm
(anonymous when we have no credentials), cached per scope until it expires."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests

from reconciler.adapters.registry.transport import Transport, is_loopback, registry_error
from reconciler.core import basicauth
from reconciler.core.errors import AuthError, RegistryError
from reconciler.core.reference import Reference


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


@dataclass
class _Token:
    value: str
    expires: float          # time.monotonic() past which it is renewed


class TokenAuth(Transport):
    """Transport plus credentials, challenges and tokens: authorized requests for a repository."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._challenges: dict[str, list[Challenge]] = {}
        self._tokens: dict[tuple, _Token] = {}
        self._token_locks: dict[tuple, threading.Lock] = {}
        self._creds: dict[str, tuple[str, str] | None] = {}

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
            raise RegistryError(f"registry {domain} answered /v2/ with {registry_error(resp)}")
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
            return basicauth.header(*creds)
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
            resp = self._send("GET", url, headers={}, auth_header=basicauth.header(*creds)
                              if creds else None, what="an auth token", domain=domain)
            if resp.status_code in (401, 403):
                raise AuthError(f"{domain}: the token server refused "
                                + (f"the credentials of {creds[0]!r}" if creds else "anonymous access")
                                + f" ({registry_error(resp)})",
                                hint=None if creds else f"log in first: docker-mini login {domain}")
            if resp.status_code != 200:
                raise RegistryError(f"{domain}: token server {urlsplit(realm).netloc} answered "
                                    f"{registry_error(resp)}")
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
            denied = registry_error(resp)
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
                denied = registry_error(resp)
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
                          auth_header=basicauth.header(*creds), what="/v2/", domain=domain)
        resp.close()
        if resp.status_code in (401, 403):
            raise AuthError(f"{domain} refused the credentials of {username!r}")
        if resp.status_code != 200:
            raise RegistryError(f"registry {domain} answered the login with {registry_error(resp)}")
