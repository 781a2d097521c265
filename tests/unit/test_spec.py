"""Loading stack specs: every kind of mistake is reported with file:line and key path, all at once;
interpolation; directories of files; the normalized model and its hash."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from reconciler.core.errors import SpecError
from reconciler.core.spec import load_stack, spec_hash

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "specs" / "stack.schema.json").read_text())


def load(text, env=None, files=None, **kw):
    sources = [("stack.yaml", textwrap.dedent(text))] if files is None else files
    kw.setdefault("subnet", "10.88.0.0/16")
    kw.setdefault("host_cpus", 2)
    return load_stack(sources, SCHEMA, env or {}, **kw)


def errors_of(text, **kw) -> list[str]:
    with pytest.raises(SpecError) as info:
        load(text, **kw)
    err = info.value
    return [str(e) for e in getattr(err, "errors", [err])]


def one_error(text, **kw) -> str:
    errs = errors_of(text, **kw)
    assert len(errs) == 1, errs
    return errs[0]


GOOD = """\
    stack: shop
    containers:
      web:
        image: busybox
        memory: 64m
"""


def test_schema_file_is_a_valid_draft_2020_12_schema():
    from jsonschema import Draft202012Validator
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"].endswith("2020-12/schema")


def test_a_good_spec_loads():
    s = load(GOOD)
    web = s.containers["web"]
    assert (s.name, web.container_name, web.resources.memory) == ("shop", "shop-web", 64 << 20)
    assert web.hostname == "web" and web.state == "running" and web.restart == "no"
    assert [i.ref for i in s.images] == ["busybox"]


@pytest.mark.parametrize("body, expected", [
    # bad values, by the schema
    ("    memory: 12x\n", 'stack.yaml:6 containers.web.memory: "12x" is not a size'),
    ("    restart: sometimes\n", 'stack.yaml:6 containers.web.restart: "sometimes" is not a restart policy'),
    ("    state: runing\n", 'stack.yaml:6 containers.web.state: "runing" is not one of: running, stopped, absent'),
    ("    mac: 02:42\n", 'stack.yaml:6 containers.web.mac: "02:42" is not a MAC address'),
    ("    ip: 10.88.0.300\n", 'stack.yaml:6 containers.web.ip: "10.88.0.300" is not an IPv4 address'),
    ("    pids: many\n", 'stack.yaml:6 containers.web.pids: "many" is not an integer'),
    ("    cpus: -1\n", "stack.yaml:6 containers.web.cpus: -1: -1 is less than or equal to the minimum of 0"),
    ("    env: [A]\n", 'stack.yaml:6 containers.web.env[0]: "A" is not NAME=value'),
    ("    ports: ['80:80:80:80']\n", 'stack.yaml:6 containers.web.ports[0]: "80:80:80:80" is not a port mapping'),
    ("    volumes: [./relative:/x]\n", 'stack.yaml:6 containers.web.volumes[0]: "./relative:/x" is not a volume'),
    ("    volumes: [undeclared:/x]\n", 'stack.yaml:6 containers.web.volumes[0]: refers to undefined volume "undeclared"'),
    ("    network: wifi\n", 'stack.yaml:6 containers.web.network: "wifi" is not a network mode'),
    ("    stop_grace_period: soon\n", 'stack.yaml:6 containers.web.stop_grace_period: "soon" is not a duration'),
    # semantic checks
    ("    memory: 1m\n", "stack.yaml:6 containers.web.memory: Minimum memory limit allowed is 6MB"),
    ("    cpus: 0.5\n    cpu_quota: 50000\n", "stack.yaml:7 containers.web.cpu_quota: conflicts with cpus"),
    ("    cpus: 8\n", "stack.yaml:6 containers.web.cpus: range of CPUs is from 0.01 to 2.00"),
    ("    ip: 10.99.0.5\n", 'stack.yaml:6 containers.web.ip: "10.99.0.5" is outside the bridge subnet 10.88.0.0/16'),
    ("    ip: 10.88.0.1\n", 'stack.yaml:6 containers.web.ip: "10.88.0.1" is the bridge\'s gateway address'),
    ("    ip: 10.88.255.255\n", 'stack.yaml:6 containers.web.ip: "10.88.255.255" is the subnet\'s broadcast address'),
    ("    mac: '01:00:00:00:00:01'\n", 'stack.yaml:6 containers.web.mac: "01:00:00:00:00:01" is a multicast address'),
    ("    network: host\n    ip: 10.88.0.5\n", "stack.yaml:7 containers.web.ip: a static ip needs network: bridge"),
    ("    depends_on: [web]\n", 'stack.yaml:6 containers.web.depends_on[0]: "web" depends on itself'),
    ("    depends_on: [dbb]\n", 'stack.yaml:6 containers.web.depends_on[0]: depends on unknown container "dbb"'),
    ("    labels: {io.docker-mini.stack: x}\n", "stack.yaml:6 containers.web.labels.io.docker-mini.stack: labels starting with"),
    ("    command: 'echo \"unclosed'\n", "stack.yaml:6 containers.web.command: \"echo \\\"unclosed\" cannot be split"),
])
def test_each_kind_of_mistake_names_file_line_and_key(body, expected):
    text = "stack: shop\ncontainers:\n  web:\n    image: busybox\n    memory: 64m\n" + body
    if body.startswith("    memory:"):
        text = text.replace("    memory: 64m\n", "    hostname: web\n")
    assert one_error(text).startswith(expected)


@pytest.mark.parametrize("body, expected", [
    ("    command: 5\n", "stack.yaml:5 containers.web.command: 5 is not a string or a list"),
    ("    env: 5\n", "stack.yaml:5 containers.web.env: 5 is not a mapping or a list"),
    ("    env_file: {a: b}\n", 'stack.yaml:5 containers.web.env_file: {"a": "b"} is not a string or a list'),
])
def test_values_of_no_accepted_type_name_every_accepted_type(body, expected):
    assert one_error("stack: shop\ncontainers:\n  web:\n    image: busybox\n" + body) == expected


def test_empty_containers_means_none():
    assert load("stack: shop\ncontainers:\n").containers == {}


def test_unknown_key_suggests_the_closest_known_one():
    err = one_error("stack: shop\ncontainers:\n  web:\n    image: busybox\n    memroy: 64m\n")
    assert err.startswith('stack.yaml:5 containers.web.memroy: unknown key "memroy"')
    assert 'did you mean "memory"?' in err


def test_unknown_top_level_key_and_missing_required_key():
    errs = errors_of("stack: shop\nservices: {}\ncontainers:\n  web:\n    command: sleep 1\n")
    assert errs[0].startswith('stack.yaml:2 services: unknown key "services"')
    assert errs[1].startswith('stack.yaml:4 containers.web.image: missing required key "image"')


def test_bad_names():
    assert one_error("stack: Shop\n").startswith('stack.yaml:1 stack: "Shop" is not a stack name')
    err = one_error("stack: shop\ncontainers:\n  bad name:\n    image: busybox\n")
    assert err.startswith('stack.yaml:3 containers.bad name: "bad name" is not a container name')


def test_all_errors_are_reported_at_once_in_line_order():
    errs = errors_of("""\
        stack: shop
        containers:
          web:
            image: busybox
            memory: 12x
            depends_on: [db]
            ip: 10.88.0.5
          db:
            image: busybox
            depends_on: [web]
            ip: 10.88.0.5
            restart: sometimes
    """)
    assert [e.split(":")[1].split()[0] for e in errs] == ["5", "6", "11", "12"]
    assert "depends_on cycle: web -> db -> web" in errs[1]
    assert 'is also the ip of container "web"' in errs[2]


def test_duplicate_depends_on_entries():
    errs = errors_of("stack: s\ncontainers:\n  a: {image: x}\n  b: {image: x, depends_on: [a, a]}\n")
    assert errs == ["stack.yaml:4 containers.b.depends_on: has duplicate entries"]


def test_duplicate_mac():
    errs = errors_of("stack: s\ncontainers:\n  a: {image: x, mac: '02:00:00:00:00:01'}\n"
                     "  b: {image: x, mac: '02:00:00:00:00:01'}\n")
    assert errs == ['stack.yaml:4 containers.b.mac: "02:00:00:00:00:01" is also the mac of container "a"']


def test_duplicate_yaml_key_and_syntax_error():
    assert one_error("stack: s\nstack: t\n").startswith('stack.yaml:2 stack: duplicate key "stack"')
    assert one_error("stack: s\ncontainers: [\n").startswith("stack.yaml:3: not valid YAML")


def test_empty_file():
    assert "empty spec" in one_error("")


# --- interpolation ---------------------------------------------------------------------------


def test_interpolation_from_the_environment_with_defaults_and_types():
    s = load("""\
        stack: ${STACK:-shop}
        containers:
          web:
            image: ${REGISTRY}/busybox
            pids: ${PIDS:-100}
            env: {GREETING: "hello ${WHO}", PRICE: "$$5", EMPTY: "${UNSET_BUT_EMPTY:-dflt}"}
    """, env={"REGISTRY": "127.0.0.1:5000", "WHO": "world", "UNSET_BUT_EMPTY": ""})
    web = s.containers["web"]
    assert s.name == "shop" and web.image == "127.0.0.1:5000/busybox"
    assert web.resources.pids_limit == 100            # a plain scalar keeps its type after substitution
    assert web.env == ("GREETING=hello world", "PRICE=$5", "EMPTY=dflt")


def test_unset_variable_without_default_is_an_error_naming_the_line():
    errs = errors_of("stack: shop\ncontainers:\n  web:\n    image: busybox\n    user: ${RUN_AS}\n"
                     "    hostname: ${HOST}\n")
    assert errs[0].startswith("stack.yaml:5 containers.web.user: ${RUN_AS} is not set")
    assert errs[1].startswith("stack.yaml:6 containers.web.hostname: ${HOST} is not set")


def test_env_map_value_without_value_comes_from_the_environment():
    s = load("stack: s\ncontainers:\n  w:\n    image: x\n    env: {TOKEN: , MISSING: }\n", env={"TOKEN": "t"})
    assert s.containers["w"].env == ("TOKEN=t",)


def test_yaml_1_2_booleans_keep_no_a_string():
    s = load("stack: s\ncontainers:\n  w:\n    image: x\n    restart: no\n    env: {A: yes, B: true}\n")
    assert s.containers["w"].restart == "no"
    assert s.containers["w"].env == ("A=yes", "B=true")


# --- env files ---------------------------------------------------------------------------------


def test_env_file_is_read_through_the_callback_and_env_overrides_it():
    # Docker's --env-file format: values verbatim (quotes included), a bare NAME from the environment
    files = {"app.env": "# comment\nA=1\nB='two words'\n\nC=3\nFROM_ENV\nUNSET\n"}
    s = load("stack: s\ncontainers:\n  w:\n    image: x\n    env_file: app.env\n    env: {C: override}\n",
             env={"FROM_ENV": "yes"}, read_env_file=lambda spec, name: files[name])
    assert s.containers["w"].env == ("A=1", "B='two words'", "C=override", "FROM_ENV=yes")


def test_env_file_errors():
    def read(spec, name):
        if name == "missing.env":
            raise FileNotFoundError(2, "No such file or directory")
        return "GOOD=1\nnot a line\n"
    errs = errors_of("stack: s\ncontainers:\n  w:\n    image: x\n    env_file: [missing.env, bad.env]\n",
                     read_env_file=read)
    assert 'stack.yaml:5 containers.w.env_file[0]: env_file "missing.env": No such file or directory' in errs
    assert any(e.startswith('bad.env:2: "not a line" is not NAME=value') for e in errs)


# --- directories of files ----------------------------------------------------------------------


def test_files_of_a_directory_merge_into_one_stack():
    s = load(None, files=[("d/a.yaml", "stack: shop\ncontainers:\n  db: {image: x}\n"),
                          ("d/b.yaml", "stack: shop\ncontainers:\n  web: {image: y, depends_on: [db]}\n")])
    assert list(s.containers) == ["db", "web"]
    assert s.files == ("d/a.yaml", "d/b.yaml")


def test_directory_errors_name_the_right_file():
    errs = errors_of(None, files=[
        ("d/a.yaml", "stack: shop\ncontainers:\n  db: {image: x}\n"),
        ("d/b.yaml", "stack: shop\n\ncontainers:\n  db: {image: y}\n  web: {image: y, memory: 1x}\n"),
        ("d/c.yaml", "stack: blog\n")])
    assert errs == [
        'd/b.yaml:4 containers.db: container "db" is also defined in d/a.yaml:3',
        'd/b.yaml:5 containers.web.memory: "1x" is not a size',
        'd/c.yaml:1 stack: stack "blog" differs from "shop" in d/a.yaml: all files of a directory form one stack',
    ]


# --- the model and its hash ----------------------------------------------------------------


def test_hash_is_versioned_and_ignores_limits_and_state():
    a = load(GOOD).containers["web"]
    b = load(textwrap.dedent(GOOD).replace("64m", "128m") + "    state: stopped\n    depends_on: []\n"
             ).containers["web"]
    assert a.spec_hash.startswith("v1:") and len(a.spec_hash) == 3 + 64
    assert a.spec_hash == b.spec_hash
    assert a.spec_hash == spec_hash(a.hashed_fields(), "v1")
    with pytest.raises(ValueError):
        spec_hash(a.hashed_fields(), "v9")


def test_equivalent_spellings_hash_the_same():
    a = load("stack: s\ncontainers:\n  w:\n    image: x\n    command: sh -c 'echo hi'\n"
             "    env: {A: 1}\n    mac: '02:AA:00:00:00:01'\n").containers["w"]
    b = load("stack: s\ncontainers:\n  w:\n    image: x\n    command: [sh, -c, echo hi]\n"
             "    env: [A=1]\n    mac: '02:aa:00:00:00:01'\n").containers["w"]
    assert a.spec_hash == b.spec_hash


def test_example_stack_is_valid():
    for path in sorted((REPO / "examples").glob("*.yaml")):
        text = path.read_text()
        load(None, files=[(path.name, text)], env={"REGISTRY": "127.0.0.1:5000"},
             subnet=None)


class DictCache:
    def __init__(self):
        self.valid: set[str] = set()
        self.asked: list[str] = []

    def known_valid(self, key):
        self.asked.append(key)
        return key in self.valid

    def remember_valid(self, key):
        self.valid.add(key)


def test_valid_documents_are_remembered_and_invalid_ones_never():
    cache = DictCache()
    load(GOOD, valid_cache=cache)
    assert len(cache.valid) == 1 and len(cache.asked) == 1
    load(GOOD, valid_cache=cache)                   # the same document: validated from the cache
    assert len(cache.valid) == 1 and len(cache.asked) == 2
    with pytest.raises(SpecError):
        load(GOOD.replace("64m", "12x"), valid_cache=cache)
    assert len(cache.valid) == 1


def test_interpolated_values_are_part_of_the_cached_document():
    cache = DictCache()
    text = "stack: s\ncontainers:\n  w:\n    image: x\n    pids: ${PIDS}\n"
    load(text, env={"PIDS": "10"}, valid_cache=cache)
    with pytest.raises(SpecError, match='"ten" is not an integer'):
        load(text, env={"PIDS": "ten"}, valid_cache=cache)
