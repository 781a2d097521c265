"""The engine's configuration: constants.json in the seed's kebab-case keys."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field

from reconciler.core.errors import ConfigError, InvalidArgument
from reconciler.core.units import parse_size

DEFAULT_CONFIG_PATH = "/etc/docker-mini/configs/constants.json"
DEFAULT_ROOT = "/var/lib/docker-mini"

DEFAULTS: dict = {
    "default-host": "docker.io",
    "registry-transformation": {"docker.io": "registry-1.docker.io"},
    "root": DEFAULT_ROOT,
    "bridge-name": "docker-mini0",
    "bridge-subnet": "10.77.0.0/16",
    # subnets for `network create` without --subnet (Docker's daemon.json key and shape)
    "default-address-pools": [{"base": "10.78.0.0/15", "size": 24}],
    "insecure-registries": [],
    "runtime": "runc",
    "conmon": "conmon",
    "log-max-size": "10m",
    "max-layer-size": None,         # bytes of one layer's uncompressed tar; None: unlimited, as Docker
}


@dataclass(frozen=True)
class Config:
    default_host: str = DEFAULTS["default-host"]
    registry_transformation: dict = field(default_factory=lambda: dict(DEFAULTS["registry-transformation"]))
    root: str = DEFAULT_ROOT
    bridge_name: str = DEFAULTS["bridge-name"]
    bridge_subnet: str = DEFAULTS["bridge-subnet"]
    address_pools: tuple = (("10.78.0.0/15", 24),)
    insecure_registries: tuple = ()
    runtime: str = DEFAULTS["runtime"]
    conmon: str = DEFAULTS["conmon"]
    log_max_size: int = 10 << 20
    max_layer_size: int | None = None
    source: str = "<defaults>"


_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


def _expect(kind, value, key: str, source: str):
    if not isinstance(value, kind):
        raise ConfigError(f"{source}: key {key!r} must be a {kind.__name__}, got {value!r}")
    return value


def parse_config(text: str | None, source: str = "<defaults>") -> Config:
    """Parse constants.json text (None means defaults only). Unknown keys and bad values raise."""
    data: dict = {}
    if text is not None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{source}:{e.lineno}: not valid JSON: {e.msg}") from None
        except RecursionError:
            raise ConfigError(f"{source}: not valid JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: must be a JSON object of settings")
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}",
                          hint="known keys: " + ", ".join(sorted(DEFAULTS)))
    merged = {**DEFAULTS, **data}
    for key in ("default-host", "root", "bridge-name", "runtime", "conmon"):
        _expect(str, merged[key], key, source)
        if not merged[key] or "\0" in merged[key]:
            raise ConfigError(f"{source}: key {key!r} must be a non-empty string without NUL characters")
    transformation = _expect(dict, merged["registry-transformation"], "registry-transformation", source)
    if not all(isinstance(v, str) for v in transformation.values()):
        raise ConfigError(f"{source}: key 'registry-transformation' maps registry names to host names (strings)")
    insecure = _expect(list, merged["insecure-registries"], "insecure-registries", source)
    if not all(isinstance(v, str) for v in insecure):
        raise ConfigError(f"{source}: key 'insecure-registries' must be a list of host[:port] strings")
    if not _IFNAME.fullmatch(merged["bridge-name"]) or merged["bridge-name"] in (".", ".."):
        raise ConfigError(f"{source}: key 'bridge-name' must be 1-15 characters (a Linux interface name)",
                          hint="letters, digits, '-', '_' and '.'")
    try:
        net = ipaddress.IPv4Network(_expect(str, merged["bridge-subnet"], "bridge-subnet", source))
    except ValueError as e:
        raise ConfigError(f"{source}: key 'bridge-subnet': {e}") from None
    if net.prefixlen > 30:
        raise ConfigError(f"{source}: key 'bridge-subnet': {net} is too small for containers")
    address_pools = _address_pools(merged["default-address-pools"], source)
    try:
        log_max = parse_size(merged["log-max-size"], "log-max-size")
    except InvalidArgument as e:
        raise ConfigError(f"{source}: key {e.message}") from None
    max_layer = merged["max-layer-size"]
    if max_layer is not None:
        if isinstance(max_layer, bool) or not isinstance(max_layer, (str, int)):
            raise ConfigError(f"{source}: key 'max-layer-size' must be a size such as \"512m\", or null "
                              f"for no limit; got {max_layer!r}")
        try:
            max_layer = parse_size(max_layer, "max-layer-size")
        except InvalidArgument as e:
            raise ConfigError(f"{source}: key {e.message}") from None
        if max_layer == 0:
            raise ConfigError(f"{source}: key 'max-layer-size' must be more than 0 (null for no limit)")
    return Config(
        default_host=merged["default-host"],
        registry_transformation=dict(transformation),
        root=merged["root"],
        bridge_name=merged["bridge-name"],
        bridge_subnet=str(net),
        address_pools=address_pools,
        insecure_registries=tuple(insecure),
        runtime=merged["runtime"],
        conmon=merged["conmon"],
        log_max_size=log_max,
        max_layer_size=max_layer,
        source=source,
    )


def _address_pools(value, source: str) -> tuple:
    pools = []
    for pool in _expect(list, value, "default-address-pools", source):
        try:
            base = ipaddress.IPv4Network(pool["base"])
            size = int(pool["size"])
            if not base.prefixlen <= size <= 30 or isinstance(pool["size"], bool):
                raise ValueError(f"size {size} must be between {base.prefixlen} and 30")
        except (TypeError, KeyError, ValueError) as e:
            raise ConfigError(f"{source}: key 'default-address-pools': each entry is "
                              f'{{"base": CIDR, "size": prefix length}} ({e})') from None
        pools.append((str(base), size))
    return tuple(pools)
