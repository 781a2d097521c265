import json
from pathlib import Path

import pytest

from reconciler.core.config import DEFAULTS, parse_config
from reconciler.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_constants_match_the_built_in_defaults():
    assert json.loads((REPO / "configs" / "constants.json").read_text()) == DEFAULTS


def test_defaults():
    c = parse_config(None)
    assert c.bridge_name == "docker-mini0"
    assert c.bridge_subnet == "10.77.0.0/16"
    assert c.registry_transformation == {"docker.io": "registry-1.docker.io"}


@pytest.mark.parametrize("text, needle", [
    ('{"bridge-nmae": "x"}', "unknown key 'bridge-nmae'"),
    ('{"bridge-subnet": "10.0.0.0/33"}', "bridge-subnet"),
    ('{"bridge-name": 5}', "'bridge-name' must be a str"),
    ('{"log-max-size": "lots"}', "log-max-size"),
    ('{"root": ', "conf.json:1: not valid JSON"),
    ('{"root": "/var/\\u0000x"}', "'root' must be a non-empty string without NUL"),
    ('{"runtime": ""}', "'runtime' must be a non-empty string"),
    ('{"bridge-name": "a b"}', "'bridge-name' must be 1-15 characters"),
    ('{"bridge-name": "a/b"}', "'bridge-name' must be 1-15 characters"),
    ('{"registry-transformation": {"docker.io": 1}}', "'registry-transformation' maps registry names"),
    ('{"insecure-registries": [1]}', "'insecure-registries' must be a list of host[:port] strings"),
])
def test_bad_config_names_file_and_key(text, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="conf.json")
    assert needle in str(e.value)
    assert "conf.json" in str(e.value)


@pytest.mark.parametrize("subnet, canonical", [
    ("10.251.77.0/24", "10.251.77.0/24"),
    ("172.16.0.0/12", "172.16.0.0/12"),
    ("10.9.0.0/255.255.0.0", "10.9.0.0/16"),       # a netmask, as ipaddress reads it
])
def test_bridge_subnet_spellings(subnet, canonical):
    assert parse_config(json.dumps({"bridge-subnet": subnet})).bridge_subnet == canonical


@pytest.mark.parametrize("subnet, needle", [
    ("10.0.0.1/24", "has host bits set"),
    ("010.0.0.0/8", "Leading zeros"),
    ("10.0.0/24", "Expected 4 octets"),
    ("10.0.0.0/31", "too small"),
    ("256.0.0.0/8", "256"),
])
def test_bad_bridge_subnet_says_why(subnet, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(json.dumps({"bridge-subnet": subnet}), source="conf.json")
    assert needle in str(e.value) and "bridge-subnet" in str(e.value)


def test_cli_reports_bad_config_file(dm, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"bridge-name": "a-name-that-is-far-too-long"}')
    proc = dm("--config", str(bad), "version", check=False)
    assert proc.returncode == 1          # exit 2 is only "changes pending" (plan)
    assert "bridge-name" in proc.stderr and str(bad) in proc.stderr


def test_default_address_pools():
    assert parse_config(None).address_pools == (("10.78.0.0/15", 24),)
    c = parse_config('{"default-address-pools": [{"base": "172.30.0.0/16", "size": 26}]}')
    assert c.address_pools == (("172.30.0.0/16", 26),)
    for bad in ('[{"base": "172.30.0.0/16", "size": 8}]', '[{"base": "nope", "size": 24}]', '[{"size": 24}]', '{}'):
        with pytest.raises(ConfigError):
            parse_config(f'{{"default-address-pools": {bad}}}')
