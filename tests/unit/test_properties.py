"""Property tests of the parsers that read what users and registries hand us: the spec loader, the
image reference parser, the manifest/index parser and the config parser, then what flags and spec
keys carry (ports, sizes, limits, cpusets, MACs, digests, env files). Random and mutated inputs
give a value or a clean project error (a DockerMiniError), never another exception."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.core.config import parse_config
from reconciler.core.digest import validate_digest
from reconciler.core.envfile import parse_env_file
from reconciler.core.errors import DockerMiniError
from reconciler.core.ipam import check_mac
from reconciler.core.limits import parse_resources
from reconciler.core.manifest import (MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_OCI_INDEX, MT_OCI_MANIFEST,
                                      parse_manifest, parse_platform, platform_for_machine, select_platform)
from reconciler.core.portmapping import parse_ports
from reconciler.core.reference import parse_reference
from reconciler.core.spec import load_stack
from reconciler.core.units import parse_size

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "specs" / "stack.schema.json").read_text())

SHORT = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def value_or_project_error(parse, *args, **kw):
    """parse(*args) returns, or raises a DockerMiniError with a message; anything else fails."""
    try:
        return parse(*args, **kw)
    except DockerMiniError as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        return e


def mutated(base: str):
    """Strings made from base by a few random edits: deletions, insertions, replacements."""
    alphabet = st.sampled_from(list(":-[]{}!&*|>'\"#%@`,?\n \t.0123456789abcz$") + ["\x00", "\u00e9", "\ufeff"])

    @st.composite
    def edit(draw):
        text = base
        for _ in range(draw(st.integers(1, 6))):
            i = draw(st.integers(0, len(text)))
            op = draw(st.sampled_from(("insert", "delete", "replace", "duplicate")))
            if op == "insert":
                text = text[:i] + draw(st.text(alphabet, min_size=1, max_size=4)) + text[i:]
            elif op == "delete":
                text = text[:i] + text[i + draw(st.integers(1, 8)):]
            elif op == "replace":
                text = text[:i] + draw(alphabet) + text[i + 1:]
            else:
                j = draw(st.integers(i, min(len(text), i + 40)))
                text = text[:j] + text[i:j] + text[j:]
        return text

    return edit()


# ------------------------------------------------------------------ spec loader

GOOD_SPEC = textwrap.dedent("""\
    stack: shop
    images:
      - 127.0.0.1:5000/busybox:latest
      - {ref: old/app:1.0, state: absent}
    containers:
      web:
        image: ${REGISTRY:-127.0.0.1:5000}/busybox:latest
        command: ["httpd", "-f", "-p", "80"]
        env: {MODE: prod, N: 3}
        memory: 64m
        cpus: 0.5
        pids: 50
        disk: 1g
        ip: 10.88.0.10
        mac: "02:42:0a:58:00:0a"
        ports: ["8080:80", "127.0.0.1:9090:90/udp"]
        volumes: ["/srv/www:/var/www:ro"]
        restart: on-failure:3
        stop_grace_period: 2s
        labels: {tier: front}
        state: running
      db:
        image: busybox
        depends_on: [web]
        restart: always
        state: stopped
""")

SPEC_KEYS = ["stack", "images", "containers", "pull_policy", "image", "command", "entrypoint", "env",
             "env_file", "memory", "cpus", "cpu_period", "cpu_quota", "pids", "disk", "ip", "mac",
             "ports", "volumes", "restart", "depends_on", "state", "labels", "user", "workdir",
             "hostname", "stop_grace_period", "stop_signal", "network", "ref", "web", "db"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["64m", "1g", "0", "-1", "1e400", "10.88.0.10", "10.88.0.0/16", "999.1.1.1", "zz:zz",
                     "02:42:0a:58:00:0a", "ff:ff:ff:ff:ff:ff", "8080:80", "99999:80", "0:0", "a:b:c:d",
                     "/:/host:ro", "x:y:z:w", "on-failure:-1", "on-failure:x", "always", "no", "running",
                     "absent", "${X}", "${X:-}", "$$", "busybox", "UPPER/case", "::", "sha256:zz", ""]),
)
keys = st.one_of(st.sampled_from(SPEC_KEYS), st.text(max_size=8))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=25)


def _load_spec(text: str):
    return load_stack([("stack.yaml", text)], SCHEMA, {"REGISTRY": "127.0.0.1:5000"},
                      subnet="10.88.0.0/16", host_cpus=2, read_env_file=_no_env_files)


def _no_env_files(spec_file: str, name: str) -> str:
    raise FileNotFoundError(name)


def test_the_good_spec_loads():
    stack = _load_spec(GOOD_SPEC)
    assert not isinstance(stack, DockerMiniError)


@QUICK
@given(mutated(GOOD_SPEC))
@example(GOOD_SPEC.replace('"02:42:0a:58:00:0a"', "zz:zz"))
@example(GOOD_SPEC.replace("image: busybox", "image: !!python/object/apply:os.system [true]"))
@example(GOOD_SPEC.replace("image: busybox", "image: {a: 1}"))
@example(GOOD_SPEC.replace("image: busybox", "image: [1, [2]]"))
@example(GOOD_SPEC.replace("image: busybox", "image: ? [a]"))
@example("a: &a [1]\nb: *a\nc: *b\n")
@example("stack: s\ncontainers:\n  ? [a, b]\n  : {image: busybox}\n")
@example("stack: s\ncontainers:\n  web: {image: busybox, env: {? [a]: b}}\n")
@example("stack: s\ncontainers:\n  web: {image: busybox, mac: 02:42:0a:58:00:0a:ff}\n")
@example("stack: s\ncontainers:\n  web: {image: busybox, ip: 10.88.0.1}\n  db: {image: busybox, ip: 10.88.0.1}\n")
@example("%YAML 1.1\n---\nstack: s\n")
@example("--- !!set {a, b}\n")
@example("stack: !!binary aGVsbG8=\n")
@example("stack: !!timestamp 2001-12-14\n")
def test_mutated_specs_load_or_are_refused_cleanly(text):
    value_or_project_error(_load_spec, text)


@QUICK
@given(st.text(max_size=200))
def test_random_text_specs_load_or_are_refused_cleanly(text):
    value_or_project_error(_load_spec, text)


@SHORT
@given(documents)
def test_random_documents_load_or_are_refused_cleanly(doc):
    value_or_project_error(_load_spec, yaml.safe_dump(doc))


@SHORT
@given(st.dictionaries(st.sampled_from(SPEC_KEYS), documents, max_size=8), st.text(min_size=1, max_size=10))
def test_random_container_mappings_load_or_are_refused_cleanly(container, name):
    doc = {"stack": "s", "containers": {name: {"image": "busybox", **container}}}
    value_or_project_error(_load_spec, yaml.safe_dump(doc))


@SHORT
@given(mutated("stack: shop\ncontainers:\n  db:\n    image: busybox\n    depends_on: [web]\n"))
def test_a_mutated_file_next_to_a_good_one_in_a_spec_directory(text):
    sources = [("a.yaml", "stack: shop\ncontainers:\n  web:\n    image: busybox\n"), ("b.yaml", text)]
    value_or_project_error(load_stack, sources, SCHEMA, {}, subnet="10.88.0.0/16", host_cpus=2,
                           read_env_file=_no_env_files)


# ------------------------------------------------------------------ image references

REF_CHARS = "abcz09AZ._-/:@+ \t\n%[]sha256"


@QUICK
@given(st.one_of(st.text(max_size=80), st.text(REF_CHARS, max_size=80),
                 mutated("registry.example.com:5000/team/app_x__y-z:v1.2@sha256:" + "a" * 64)))
@example("a" * 64)
@example("[::1]:5000/busybox")
@example("localhost:99999/x")
@example("localhost:0/x")
@example("x@sha256:" + "A" * 64)
@example("x:" + "t" * 200)
@example("x" * 300)
@example("\u0661\u0662:5000/x")
def test_image_references_parse_or_are_refused_cleanly(text):
    ref = value_or_project_error(parse_reference, text)
    if not isinstance(ref, DockerMiniError):
        # a parsed reference names itself again the same way
        assert parse_reference(str(ref)) == ref


# ------------------------------------------------------------------ manifests and indexes

DIGEST = "sha256:" + "ab" * 32
MEDIA_TYPES = [MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST,
               "application/vnd.docker.distribution.manifest.v1+json", "application/json", "", "text/html",
               "application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.layer.v1.tar+gzip",
               "application/vnd.docker.container.image.v1+json"]
GOOD_MANIFEST = {
    "schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 10},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST, "size": 5,
                "urls": ["http://x"], "annotations": {"a": "b"}}],
    "annotations": {"org.opencontainers.image.created": "now"},
}
GOOD_INDEX = {
    "schemaVersion": 2, "mediaType": MT_OCI_INDEX,
    "manifests": [{"mediaType": MT_OCI_MANIFEST, "digest": DIGEST, "size": 7,
                   "platform": {"os": "linux", "architecture": "arm", "variant": "v7",
                                "os.version": "1", "os.features": ["x"]}},
                  {"mediaType": MT_OCI_MANIFEST, "digest": DIGEST, "size": 7,
                   "platform": {"os": "linux", "architecture": "amd64"}}],
}
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64), st.floats(allow_nan=False),
              st.text(max_size=10), st.sampled_from(MEDIA_TYPES + [DIGEST, "sha256:", "md5:00", "linux", "amd64"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=12)


@st.composite
def mutated_documents(draw, base):
    """base (a JSON value) with a few values replaced, deleted or added at random paths."""
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 4))):
        node = doc
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
            if not isinstance(node[key], (dict, list)):
                break
            node = node[key]
        if isinstance(node, dict):
            key = draw(st.one_of(st.sampled_from(sorted(node) or ["x"]),
                                 st.sampled_from(["mediaType", "digest", "size", "platform", "manifests",
                                                  "layers", "config", "annotations", "os", "architecture"])))
            if draw(st.booleans()) and key in node:
                del node[key]
            else:
                node[key] = draw(json_values)
        elif isinstance(node, list):
            if node and draw(st.booleans()):
                node[draw(st.integers(0, len(node) - 1))] = draw(json_values)
            else:
                node.append(draw(json_values))
    return doc


def _parse_and_use(raw: bytes, media_type: str):
    parsed = parse_manifest(raw, media_type)
    if hasattr(parsed, "manifests"):
        for wanted in ("linux/amd64", "linux/arm/v7", "linux/arm64"):
            value_or_project_error(select_platform, parsed, parse_platform(wanted))
    return parsed


@QUICK
@given(st.one_of(mutated_documents(GOOD_MANIFEST), mutated_documents(GOOD_INDEX), json_values),
       st.sampled_from(MEDIA_TYPES + [None, "application/vnd.oci.image.index.v1+json; charset=utf-8"]))
def test_manifests_parse_or_are_refused_cleanly(doc, media_type):
    value_or_project_error(_parse_and_use, json.dumps(doc).encode(), media_type)


@SHORT
@given(st.one_of(st.binary(max_size=200), mutated(json.dumps(GOOD_INDEX)).map(lambda s: s.encode("utf-8", "surrogatepass"))),
       st.sampled_from(MEDIA_TYPES + [None]))
@example(b"\xff\xfe{}", MT_OCI_MANIFEST)
@example(b"[" * 100_000, MT_OCI_MANIFEST)
@example(b'{"schemaVersion": 2, "manifests": [], "mediaType": 5}', None)
def test_manifest_bytes_parse_or_are_refused_cleanly(raw, media_type):
    value_or_project_error(_parse_and_use, raw, media_type)


@QUICK
@given(st.one_of(st.text(max_size=30), mutated("linux/arm64/v8")))
def test_platforms_parse_or_are_refused_cleanly(text):
    value_or_project_error(parse_platform, text)


@SHORT
@given(st.text(max_size=20))
def test_any_machine_name_gives_a_platform(machine):
    value_or_project_error(platform_for_machine, machine)


# ------------------------------------------------------------------ config

GOOD_CONFIG = {"default-host": "docker.io", "registry-transformation": {"docker.io": "registry-1.docker.io"},
               "bridge-name": "dm0", "bridge-subnet": "10.77.0.0/16", "insecure-registries": ["h:5000"],
               "log-max-size": "10m"}
CONFIG_KEYS = ["default-host", "registry-transformation", "root", "bridge-name", "bridge-subnet",
               "insecure-registries", "runtime", "conmon", "log-max-size"]
config_values = st.one_of(json_values, st.sampled_from(
    ["10.77.0.0/16", "10.77.0.1/16", "10.77.0.0/31", "10.77.0.0/33", "1.2.3.4", "::1/64", "0.0.0.0/0",
     "10m", "-1", "1e9g", "0", "x" * 16, "", "10.077.0.0/16"]))


@QUICK
@given(st.one_of(mutated_documents(GOOD_CONFIG), json_values,
                 st.dictionaries(st.sampled_from(CONFIG_KEYS), config_values, max_size=6)))
def test_configs_parse_or_are_refused_cleanly(doc):
    value_or_project_error(parse_config, json.dumps(doc), "constants.json")


@SHORT
@given(st.one_of(st.text(max_size=100), mutated(json.dumps(GOOD_CONFIG))))
@example('{"bridge-subnet": "10.77.0.0/16", "bridge-subnet": 5}')
@example("[" * 100_000)
@example('{"log-max-size": 1e999}')
@example('{"log-max-size": NaN}')
def test_config_text_parses_or_is_refused_cleanly(text):
    value_or_project_error(parse_config, text, "constants.json")


@pytest.mark.parametrize("text", ['{"root": "/x"}', None])
def test_good_configs_parse(text):
    assert parse_config(text, "constants.json").bridge_name


# ------------------------------------------------------------------ what flags and spec keys carry

FLAG_TEXT = st.one_of(st.text(max_size=30), st.text("0123456789.:-/kmgbKMGBtcpudTCPUD e+x[]", max_size=30))


@QUICK
@given(st.lists(FLAG_TEXT, max_size=4))
@example(["99999:80"])
@example(["1-3:1-2"])
@example(["0.0.0.0::80/udp"])
@example(["65535-1:1-65535"])
def test_port_flags_parse_or_are_refused_cleanly(specs):
    value_or_project_error(parse_ports, specs)


@QUICK
@given(st.one_of(FLAG_TEXT, st.integers(-2**70, 2**70), st.floats()))
@example("1e400g")
@example("9" * 400)
@example("-1")
def test_sizes_parse_or_are_refused_cleanly(value):
    value_or_project_error(parse_size, value, "--memory")


@SHORT
@given(st.one_of(st.none(), FLAG_TEXT, st.integers(-2**70, 2**70), st.floats()),
       st.one_of(st.none(), FLAG_TEXT, st.floats()), st.one_of(st.none(), FLAG_TEXT, st.integers(-2**70, 2**70)))
@example("4m", "-1", "nan")
@example("1e400", "1", None)
def test_resource_flags_parse_or_are_refused_cleanly(memory, cpus, pids):
    value_or_project_error(parse_resources, memory=memory, cpus=cpus, pids_limit=pids, host_cpus=2)


@QUICK
@given(FLAG_TEXT)
@example("0-99999999999")
@example("3-1")
def test_cpu_lists_parse_or_are_refused_cleanly(text):
    value_or_project_error(parse_resources, cpuset_cpus=text, host_cpus=4)


@QUICK
@given(st.one_of(st.text(max_size=40), mutated("02:42:0a:58:00:0a")))
def test_mac_addresses_parse_or_are_refused_cleanly(text):
    value_or_project_error(check_mac, text)


@QUICK
@given(st.one_of(st.text(max_size=80), mutated("sha256:" + "ab" * 32)))
def test_digests_parse_or_are_refused_cleanly(text):
    value_or_project_error(validate_digest, text)


@SHORT
@given(st.text(max_size=300))
@example("=x\n")
@example("A\x00B=1")
@example("export X=1")
def test_env_files_parse_or_are_refused_cleanly(text):
    value_or_project_error(parse_env_file, text, "app.env", lambda name: None)
