"""Compose files as written in the wild, converted onto the engine's own stack model (no root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.core.errors import SpecError
from reconciler.core.ocimounts import parse_mount
from reconciler.core.spec import load_stack
from reconciler.core.spec.compose import interpolation, is_compose, normalize_project_name

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "specs" / "stack.schema.json").read_text())


def _without_health(schema: dict) -> dict:
    """The native schema as it was before healthchecks: compose's healthcheck and conditions
    must then be refused as not supported yet (the front end follows the native model)."""
    out = json.loads(json.dumps(schema))
    props = out["$defs"]["container"]["properties"]
    props.pop("healthcheck", None)
    props["depends_on"] = {"type": "array", "uniqueItems": True, "items": {"type": "string"}}
    return out


BASIC = _without_health(SCHEMA)


def load(text: str, env: dict | None = None, file: str = "/srv/My-Shop/compose.yaml", schema=BASIC, **kw):
    return load_stack([(file, text)], schema, env or {}, subnet="10.77.0.0/16", **kw)


def errors_of(text: str, env: dict | None = None) -> str:
    with pytest.raises(SpecError) as e:
        load(text, env)
    return str(e.value)


# a file in the style compose's own docs and most projects use: anchors, extension fields,
# short and long syntax mixed, list and map environments, deploy limits, profiles
REALISTIC = """\
x-logging: &default-env
  TZ: UTC
  LOG_LEVEL: ${LOG_LEVEL:-info}

x-base: &base
  restart: unless-stopped
  stop_grace_period: 1m30s

services:
  web:
    <<: *base
    image: "registry.local:5000/nginx:${NGINX_TAG-1.25}"
    ports:
      - "8080:80"
      - target: 443
        published: "8443"
        host_ip: 127.0.0.1
        protocol: tcp
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - type: volume
        source: cache
        target: /var/cache/nginx
      - type: tmpfs
        target: /run
        tmpfs:
          size: 1048576
    depends_on:
      - app
    environment:
      <<: *default-env
      UPSTREAM: app:3000
  app:
    <<: *base
    image: registry.local:5000/app:latest
    command: ["node", "server.js"]
    environment:
      - NODE_ENV=production
      - SECRET
    env_file: app.env
    user: "1000:1000"
    working_dir: /srv/app
    mem_limit: 256m
    cpus: 0.5
    pids_limit: 200
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    read_only: true
    tmpfs: /tmp
    ulimits:
      nproc: 65535
      nofile:
        soft: 20000
        hard: 20000
    labels:
      - com.example.team=shop
    networks:
      default:
        ipv4_address: 10.77.0.50
    healthcheck:
      disable: true
  adminer:
    image: registry.local:5000/adminer
    profiles: [debug]
  worker:
    image: registry.local:5000/app:latest
    entrypoint: /usr/bin/worker --queue=jobs
    deploy:
      replicas: 1
      resources:
        limits:
          cpus: "0.25"
          memory: 64M
    depends_on:
      app:
        condition: service_started
    x-notes: anything under x- is ignored
    stop_signal: SIGINT

volumes:
  cache:
  shared:
    external: true
"""


def read_env(spec_file, name):
    assert name == "app.env"
    return "FROM_FILE=1\nNODE_ENV=development\n"


def test_a_realistic_file_maps_onto_the_stack_model():
    stack = load(REALISTIC, {"SECRET": "s3"}, read_env_file=read_env)
    assert stack.name == "my-shop"                      # the directory's name, normalised
    assert list(stack.containers) == ["app", "web", "worker"]          # dependencies first; no profile
    assert stack.volumes == ("my-shop_cache",)          # the external one is not the stack's own
    web, app, worker = stack.containers["web"], stack.containers["app"], stack.containers["worker"]
    assert web.container_name == "my-shop-web"
    assert web.image == "registry.local:5000/nginx:1.25"
    assert web.ports == ("8080:80", "127.0.0.1:8443:443/tcp")
    assert web.volumes == ("/srv/My-Shop/html:/usr/share/nginx/html:ro", "my-shop_cache:/var/cache/nginx")
    assert web.tmpfs == ("/run:size=1048576",)
    assert set(web.env) == {"TZ=UTC", "LOG_LEVEL=info", "UPSTREAM=app:3000"}
    assert web.restart == "unless-stopped" and web.stop_grace_period == 90
    assert web.depends_on == ("app",)
    assert app.command == ("node", "server.js")
    assert app.env == ("FROM_FILE=1", "NODE_ENV=production", "SECRET=s3")     # env_file, then environment
    assert (app.user, app.working_dir, app.ip) == ("1000:1000", "/srv/app", "10.77.0.50")
    assert app.resources.memory == 256 << 20 and app.resources.nano_cpus == 500_000_000
    assert app.resources.pids_limit == 200
    assert app.cap_drop == ("ALL",) and app.cap_add == ("NET_BIND_SERVICE",) and app.read_only
    assert app.tmpfs == ("/tmp",)
    assert app.ulimits == ("nproc=65535", "nofile=20000:20000")
    assert dict(app.labels) == {"com.example.team": "shop"}
    assert worker.entrypoint == ("/usr/bin/worker", "--queue=jobs")
    assert worker.resources.memory == 64 << 20 and worker.resources.nano_cpus == 250_000_000
    assert worker.stop_signal == "SIGINT"


def test_profiles_name_and_project_name():
    stack = load(REALISTIC, {"COMPOSE_PROFILES": "debug", "SECRET": "x"}, read_env_file=read_env)
    assert "adminer" in stack.containers
    assert load(REALISTIC, read_env_file=read_env, project_name="other").name == "other"
    named = "name: shop\n" + REALISTIC
    assert load(named, read_env_file=read_env, project_name="other").name == "shop"   # name: first


def test_same_services_in_compose_and_native_give_the_same_containers():
    compose = load("services:\n  db:\n    image: busybox\n    mem_limit: 32m\n    environment: [A=1]\n",
                   file="/x/shop/compose.yaml")
    native = load_stack([("/x/shop/stack.yaml", "stack: shop\ncontainers:\n  db:\n    image: busybox\n"
                          "    memory: 32m\n    env: {A: '1'}\n")], SCHEMA, {})
    assert compose.containers["db"] == native.containers["db"]
    assert compose.containers["db"].spec_hash == native.containers["db"].spec_hash


@pytest.mark.parametrize("text, value", [
    ("${A}", "x"), ("$A", "x"), ("${UNSET}", ""), ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"),
    ("${EMPTY-d}", ""), ("${UNSET-d}", "d"), ("${A:+alt}", "alt"), ("${UNSET:+alt}", ""),
    ("$$A", "$A"), ("cost: $$5", "cost: $5"), ("${A}-${A}", "x-x"),
])
def test_interpolation_as_compose(text, value):
    assert interpolation(text, {"A": "x", "EMPTY": ""}) == (value, [])


@pytest.mark.parametrize("text", ["${UNSET:?needed}", "${EMPTY:?needed}", "${UNSET?needed}"])
def test_required_variables(text):
    _, problems = interpolation(text, {"EMPTY": ""})
    assert problems and "needed" in problems[0][0]
    assert interpolation("${EMPTY?needed}", {"EMPTY": ""}) == ("", [])


def test_required_variable_is_an_error_at_its_line():
    out = errors_of("services:\n  web:\n    image: busybox:${TAG:?set TAG first}\n")
    assert out.startswith("/srv/My-Shop/compose.yaml:3 services.web.image: required variable TAG "
                          "is missing a value: set TAG first")


@pytest.mark.parametrize("body, expected", [
    ("    build: .\n", ":5 services.web.build: build: is not supported"),
    ("    container_name: x\n", ":5 services.web.container_name: container_name: is not supported"),
    ("    healthcheck:\n      test: [CMD, 'true']\n", ":5 services.web.healthcheck: healthcheck: is not supported yet"),
    ("    depends_on:\n      db:\n        condition: service_healthy\n",
     ":7 services.web.depends_on.db.condition: condition: service_healthy is not supported yet"),
    ("    networks: [front]\n", ":5 services.web.networks.front: user-defined networks are not supported yet"),
    ("    networks:\n      default:\n        aliases: [w]\n", ":7 services.web.networks.default.aliases: "),
    ("    deploy:\n      replicas: 3\n", ":6 services.web.deploy.replicas: one container per service"),
    ("    scale: 2\n", ":5 services.web.scale: scale: is not supported"),
    ("    init: true\n", ":5 services.web.init: init: is not supported yet"),
    ("    extra_hosts: ['a:1.2.3.4']\n", ":5 services.web.extra_hosts: extra_hosts: is not supported yet"),
    ("    dns: 1.1.1.1\n", ":5 services.web.dns: dns: is not supported yet"),
    ("    secrets: [s]\n", ":5 services.web.secrets: secrets: is not supported"),
    ("    volumes: [/data]\n", ":5 services.web.volumes[0]: anonymous volumes are not supported yet"),
    ("    volumes: [undeclared:/data]\n", ":5 services.web.volumes[0]: refers to undefined volume"),
    ("    platform: linux/arm64\n", ':5 services.web.platform: unknown or unsupported service key "platform"'),
    ("    mem_limit: lots\n", ':5 services.web.mem_limit: "lots" is not a size'),
    ("    ports: ['99999:80']\n", ":5 services.web.ports"),
    ("    cpu_shares: 512\n", ":5 services.web.cpu_shares: cpu_shares: is not supported yet"),
    ("    volumes:\n      - {type: volume, source: v, target: /v, volume: {nocopy: true}}\n",
     ":6 services.web.volumes[0].volume.nocopy: volume.nocopy is not supported yet"),
    ("    volumes:\n      - {type: volume, source: v, target: /v, volume: {subpath: a}}\n",
     ":6 services.web.volumes[0].volume.subpath: volume.subpath is not supported yet"),
    ("    volumes:\n      - {type: bind, source: ., target: /v, bind: {propagation: shared}}\n",
     ":6 services.web.volumes[0].bind.propagation: bind.propagation is not supported yet"),
])
def test_refused_and_wrong_keys_are_named_at_their_line(body, expected):
    text = "services:\n  db:\n    image: busybox\n  web:\n    image: busybox\nvolumes:\n  v:\n".replace(
        "  web:\n    image: busybox\n", "  web:\n" + body + "    image: busybox\n")
    out = errors_of(text)
    assert "/srv/My-Shop/compose.yaml" + expected in out, out


def test_top_level_keys_refused_and_version_ignored():
    out = errors_of("version: '3.8'\nservices:\n  a:\n    image: busybox\nsecrets:\n  s:\n    file: x\n"
                    "networks:\n  front: {}\n")
    assert "compose.yaml:5 secrets: top-level secrets: is not supported" in out
    assert "compose.yaml:9 networks.front: user-defined networks are not supported yet" in out
    assert "version" not in out


def test_detection():
    assert is_compose("x/docker-compose.yml", "")
    assert is_compose("x/anything.yaml", "services:\n  a: {}\n")
    assert not is_compose("x/stack.yaml", "stack: s\ncontainers: {}\n")
    assert normalize_project_name("My Project.v2") == "myprojectv2"
    assert normalize_project_name("_x-Y") == "x-y"


@pytest.mark.parametrize("text, expected", [
    ("type=volume,source=data,target=/d", ("volume", "data:/d")),
    ("src=data,dst=/d,readonly", ("volume", "data:/d:ro")),
    ("type=bind,source=/srv,target=/d,ro=true", ("volume", "/srv:/d:ro")),
    ("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770", ("tmpfs", "/t:size=64m,mode=1770")),
])
def test_mount_flag(text, expected):
    assert parse_mount(text) == expected


@pytest.mark.parametrize("text", ["type=volume,target=/d", "type=npipe,source=a,target=/d",
                                  "source=data", "type=bind,source=rel,target=/d", "source=a,target=/d,bogus=1"])
def test_bad_mount_flags(text):
    from reconciler.core.errors import InvalidArgument
    with pytest.raises(InvalidArgument):
        parse_mount(text)


def test_errors_found_after_the_mapping_name_the_keys_as_written():
    out = errors_of("services:\n  web:\n    image: busybox\n    deploy:\n      resources:\n        limits:\n"
                    "          memory: huge\n    networks:\n      default:\n        ipv4_address: 10.99.0.5\n"
                    "    depends_on: [dbb]\n  db:\n    image: busybox\n")
    assert 'compose.yaml:7 services.web.deploy.resources.limits.memory: "huge" is not a size' in out
    assert "compose.yaml:10 services.web.networks.default.ipv4_address: \"10.99.0.5\" is outside" in out
    assert 'compose.yaml:11 services.web.depends_on[0]: depends on unknown container "dbb"' in out
    assert "did you mean \"db\"?" in out


def test_healthcheck_and_conditions_map_through_once_the_native_model_has_them():
    from reconciler.core.spec.compose import native_features, to_native
    from reconciler.core.spec.problems import SpecErrors
    from reconciler.core.spec.yamlload import parse_yaml

    with_health = json.loads(json.dumps(BASIC))
    props = with_health["$defs"]["container"]["properties"]
    props["healthcheck"] = {"type": "object"}
    props["depends_on"] = {"type": ["array", "object"]}
    assert native_features(with_health) == {"healthcheck", "conditions"}
    assert native_features(BASIC) == frozenset()
    text = ("services:\n  web:\n    image: busybox\n    healthcheck:\n      test: [CMD, wget, -q, localhost]\n"
            "      interval: 5s\n      retries: 3\n    depends_on:\n      db: {condition: service_healthy}\n"
            "      cache:\n  db:\n    image: busybox\n  cache:\n    image: busybox\n")
    errors = SpecErrors()
    errors.scope = "c.yaml"
    data = parse_yaml(text, "c.yaml", {}, errors)
    native = to_native(data, "c.yaml", errors, {}, schema=with_health)
    assert not errors.items
    web = native["containers"]["web"]
    assert web["healthcheck"] == {"test": ["CMD", "wget", "-q", "localhost"], "interval": "5s", "retries": 3}
    assert web["depends_on"] == {"db": {"condition": "service_healthy"}, "cache": {"condition": "service_started"}}
    errors = SpecErrors()
    errors.scope = "c.yaml"
    data = parse_yaml(text.replace("retries: 3", "start_interval: 1s"), "c.yaml", {}, errors)
    to_native(data, "c.yaml", errors, {}, schema=with_health)
    assert "healthcheck.start_interval is not supported yet" in str(errors.items[0])


ODD_VALUES = [None, 1, 0.5, "x", True, [], {}, [1], ["a:b:c:d"], {"a": None}, {"a": [1]}, [{"x": 1}], [None]]


@pytest.mark.parametrize("schema", [BASIC, SCHEMA], ids=["basic", "installed"])
def test_any_value_of_any_key_is_a_spec_error_never_a_crash(schema):
    """Every key of the realistic file, given values of every YAML type: a SpecError or a stack."""
    import yaml

    doc = yaml.safe_load(REALISTIC)
    targets = [("services", "app", k) for k in doc["services"]["app"]]
    targets += [("services", "web", k) for k in doc["services"]["web"]]
    targets += [("services", "worker", "deploy"), ("volumes", "cache"), ("volumes",), ("services",), ("name",)]
    for path in targets:
        for value in ODD_VALUES:
            d = json.loads(json.dumps(doc))
            node = d
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
            try:
                load(yaml.safe_dump(d), {"SECRET": "s"}, schema=schema, read_env_file=lambda f, n: "A=1\n")
            except SpecError:
                pass


def test_the_default_network_with_the_bridge_subnet_is_the_bridge():
    text = ("services:\n  web:\n    image: busybox\n    networks:\n      default:\n        ipv4_address: 10.77.3.4\n"
            "networks:\n  default:\n    ipam:\n      config:\n        - subnet: {subnet}\n")
    assert load(text.format(subnet="10.77.0.0/16")).containers["web"].ip == "10.77.3.4"
    out = errors_of(text.format(subnet="172.28.0.0/16"))
    assert "compose.yaml:10 networks.default.ipam.config: the default network here is the bridge, subnet " \
           "10.77.0.0/16, not 172.28.0.0/16" in out
    out = errors_of(text.format(subnet="10.77.0.0/16").replace("ipam:", "driver: overlay\n    ipam:"))
    assert "networks.default: user-defined networks are not supported yet" in out


def test_port_ranges_as_compose_files_write_them():
    stack = load("services:\n  web:\n    image: busybox\n    ports: ['8080-8081:80-81', '127.0.0.1::53/udp', 9000]\n")
    assert stack.containers["web"].ports == ("8080-8081:80-81", "127.0.0.1::53/udp", "9000")
    assert "services.web.ports" in errors_of("services:\n  web:\n    image: busybox\n    ports: ['8080-8082:80-81']\n")


@pytest.mark.parametrize("text, value", [
    ("${UNSET:-${A}}", "x"), ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"), ("${A:+${A}-alt}", "x-alt"),
    ("a $ b", "a $ b"), ("${UNSET:-{braces}}", "{braces}"), ("pre${A}post$A.", "prexpostx."),
])
def test_nested_and_literal_forms(text, value):
    assert interpolation(text, {"A": "x"}) == (value, [])


@pytest.mark.parametrize("text", ["${}", "${A", "${1A}", "${A B}"])
def test_bad_interpolation_formats(text):
    assert "invalid interpolation format" in interpolation(text, {"A": "x"})[1][0][0]
