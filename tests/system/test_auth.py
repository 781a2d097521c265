"""login/logout and where credentials come from: our auth.json (0600) and ~/.docker/config.json."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from reconciler.adapters import statefiles
from reconciler.adapters.credentials import CredentialStore
from reconciler.core.config import parse_config
from reconciler.core.errors import AuthError, ConfigError, InvalidArgument, InvalidReference, StorageError
from reconciler.core.manifest import parse_platform
from reconciler.core.reference import parse_reference
from reconciler.engine import auth
from reconciler.engine.engine import Engine

AMD64 = parse_platform("linux/amd64")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """An isolated ~/.docker: DOCKER_CONFIG points at a temp dir (never the user's real one)."""
    d = tmp_path / "dotdocker"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return d / "config.json"


@pytest.fixture
def store(tmp_path, docker_config):
    return CredentialStore(tmp_path / "root" / "auth.json", statefiles)


# ------------------------------------------------------------------ the store

def test_set_get_remove_roundtrip(store):
    assert store.get("127.0.0.1:5000") is None
    store.set("127.0.0.1:5000", "alice", "pa:ss word")
    assert store.get("127.0.0.1:5000") == ("alice", "pa:ss word")
    assert store.get("127.0.0.1:5001") is None
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    data = json.loads(store.path.read_text())
    assert data == {"auths": {"127.0.0.1:5000": {"auth": b64("alice:pa:ss word")}}}, "Docker's format"
    assert [p.name for p in store.path.parent.iterdir()] == ["auth.json"], "no temp files left behind"
    store.set("127.0.0.1:5000", "alice", "new")
    assert store.get("127.0.0.1:5000") == ("alice", "new")
    assert store.remove("127.0.0.1:5000") is True
    assert store.get("127.0.0.1:5000") is None
    assert store.remove("127.0.0.1:5000") is False


def test_mode_is_0600_whatever_the_umask(store):
    old = os.umask(0)
    try:
        store.set("reg.example", "u", "p")
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("stored_as,asked_as", [
    ("https://index.docker.io/v1/", "docker.io"),
    ("docker.io", "index.docker.io"),
    ("registry-1.docker.io", "docker.io"),
    ("http://localhost:5000/", "localhost:5000"),
    ("Reg.Example.COM", "reg.example.com"),
])
def test_registry_names_are_normalized(store, stored_as, asked_as):
    store.set(stored_as, "u", "p")
    assert store.get(asked_as) == ("u", "p")
    assert store.hosts() == [store.hosts()[0]] and len(store.hosts()) == 1
    assert store.remove(asked_as)


def test_invalid_server_is_refused(store):
    with pytest.raises(InvalidReference):
        store.set("not a host", "u", "p")
    assert store.get("not a host") is None


def test_reads_docker_config_auths(store, docker_config):
    docker_config.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpw")},
        "ghcr.io": {"username": "gh", "password": "tok"},
        "quay.io": {},
    }}))
    original = docker_config.read_text()
    assert store.get("docker.io") == ("hubuser", "hubpw")
    assert store.get("ghcr.io") == ("gh", "tok")
    assert store.get("quay.io") is None
    store.set("docker.io", "mine", "minepw")
    assert store.get("docker.io") == ("mine", "minepw"), "docker-mini's own login wins"
    store.remove("docker.io")
    assert store.get("docker.io") == ("hubuser", "hubpw")
    assert docker_config.read_text() == original, "Docker's file is never written"


@pytest.mark.parametrize("content,phrase", [
    ("{not json", "not valid JSON"),
    ('{"auths": []}', "'auths' object"),
    ('{"auths": {"reg.example": {"auth": "!!!"}}}', "not base64"),
    (json.dumps({"auths": {"reg.example": {"auth": b64("nocolon")}}}), "no ':'"),
])
def test_broken_docker_config_names_the_file(store, docker_config, content, phrase):
    docker_config.write_text(content)
    with pytest.raises(ConfigError) as exc:
        store.get("reg.example")
    assert str(docker_config) in exc.value.message and phrase in exc.value.message


def test_broken_own_file_is_a_storage_error(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{")
    with pytest.raises(StorageError) as exc:
        store.get("reg.example")
    assert str(store.path) in exc.value.message


def test_credential_helpers(store, docker_config, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-testhelper"
    helper.write_text('#!/bin/sh\nread server\n[ "$1" = get ] || exit 2\n'
                      'if [ "$server" = "reg.example" ]; then\n'
                      '  printf \'{"ServerURL":"%s","Username":"helped","Secret":"s3"}\' "$server"\n'
                      'else echo "credentials not found in native keychain"; exit 1; fi\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    docker_config.write_text(json.dumps({"credHelpers": {"reg.example": "testhelper",
                                                          "other.example": "missinghelper"},
                                         "credsStore": "testhelper"}))
    assert store.get("reg.example") == ("helped", "s3")
    assert store.get("unknown.example") is None, "the default store has nothing for it"
    with pytest.raises(AuthError) as exc:
        store.get("other.example")
    assert "docker-credential-missinghelper" in exc.value.message
    docker_config.write_text(json.dumps({"credsStore": "osxkeychain-not-here"}))
    assert store.get("reg.example") is None, "a default store from another OS means anonymous"


# ------------------------------------------------------------------ login / logout

def make_engine(tmp_path, **config) -> Engine:
    text = json.dumps(config) if config else None
    return Engine(tmp_path / "root", parse_config(text))


def test_login_verifies_then_stores(tmp_path, docker_config, htpasswd_registry):
    engine = make_engine(tmp_path)
    addr = htpasswd_registry.addr
    with pytest.raises(AuthError):
        auth.login(engine, addr, "alice", "wrong")
    assert not os.path.exists(engine.layout.auth_file), "refused credentials are never stored"
    assert auth.login(engine, f"http://{addr}/", *htpasswd_registry.creds) == addr
    assert stat.S_IMODE(os.stat(engine.layout.auth_file).st_mode) == 0o600
    assert auth.logged_in(engine) == [addr]
    # a new engine (the next command) pulls with the stored credentials
    engine2 = make_engine(tmp_path)
    image = engine2.registry.resolve(parse_reference(htpasswd_registry.busybox_ref), AMD64)
    assert image.manifest_digest == htpasswd_registry.busybox_ref.digest
    assert auth.logout(engine2, addr) == addr
    assert auth.logout(engine2, addr) is None
    with pytest.raises(AuthError):
        make_engine(tmp_path).registry.resolve(parse_reference(htpasswd_registry.busybox_ref), AMD64)


def test_login_with_token_auth(tmp_path, docker_config, token_registry):
    engine = make_engine(tmp_path)
    with pytest.raises(AuthError):
        auth.login(engine, token_registry.addr, "bob", "wrong")
    auth.login(engine, token_registry.addr, *token_registry.creds)
    image = make_engine(tmp_path).registry.resolve(parse_reference(token_registry.private_ref), AMD64)
    assert image.manifest_digest == token_registry.private_ref.digest


def test_pull_with_credentials_from_docker_config(tmp_path, docker_config, htpasswd_registry):
    docker_config.write_text(json.dumps({"auths": {htpasswd_registry.addr: {
        "auth": b64("{}:{}".format(*htpasswd_registry.creds))}}}))
    image = make_engine(tmp_path).registry.resolve(parse_reference(htpasswd_registry.busybox_ref), AMD64)
    assert image.manifest_digest == htpasswd_registry.busybox_ref.digest


@pytest.mark.parametrize("user,password,phrase", [
    ("", "pw", "username"), ("u", "", "password"), ("a:b", "pw", "':'"),
])
def test_login_argument_errors(tmp_path, user, password, phrase):
    with pytest.raises(InvalidArgument) as exc:
        auth.login(make_engine(tmp_path), "127.0.0.1:1", user, password)
    assert phrase in exc.value.message


def test_login_defaults_to_the_default_host(tmp_path):
    assert auth.server_key(make_engine(tmp_path), None) == "docker.io"
    assert auth.server_key(make_engine(tmp_path, **{"default-host": "reg.example:5000"}), None) == "reg.example:5000"


def test_login_cli(dm, htpasswd_registry, docker_config):
    user, password = htpasswd_registry.creds
    bad = dm("login", "-u", user, "--password-stdin", htpasswd_registry.addr, input="wrong\n", check=False)
    assert bad.returncode != 0 and "refused" in bad.stderr
    ok = dm("login", "-u", user, "--password-stdin", htpasswd_registry.addr, input=password + "\n")
    assert "Login Succeeded" in ok.stdout
    assert json.loads((dm.root / "auth.json").read_text())["auths"][htpasswd_registry.addr]
    dm("logout", htpasswd_registry.addr)
    assert json.loads((dm.root / "auth.json").read_text())["auths"] == {}
