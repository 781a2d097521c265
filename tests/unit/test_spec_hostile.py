"""core.spec against hostile and malformed YAML: alias bombs, oversized files, unknown tags,
non-string keys, bad values. Each is refused with a SpecError naming file:line, never another
exception, and (for the bombs) without expanding anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.core.errors import SpecError
from reconciler.core.spec import MAX_SPEC_BYTES, load_stack

SCHEMA = json.loads((Path(__file__).parents[2] / "specs" / "stack.schema.json").read_text())


def load(text: str):
    return load_stack([("stack.yaml", text)], SCHEMA, {}, subnet="10.88.0.0/16", host_cpus=2)


def refusal(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load(text)
    return str(info.value)


def laughs(levels: int, width: int = 9) -> str:
    """The classic billion-laughs document: each level lists the previous one `width` times."""
    lines = ["stack: s", 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def merge_laughs(levels: int) -> str:
    """The same through merge keys: each mapping merges the previous one nine times."""
    lines = ["stack: s", "m0: &m0 {k: v}"]
    lines += [f"m{i}: &m{i} {{<<: [" + ",".join([f"*m{i - 1}"] * 9) + "]}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [laughs(9), laughs(10), laughs(7, 20), merge_laughs(9)],
                         ids=["9x9", "10x9", "7x20", "merge-keys"])
def test_alias_bombs_are_refused_with_file_and_line(text):
    assert 300 < len(text.encode()) < 700                 # the size of the bombs in the issue
    message = refusal(text)
    assert message.startswith("stack.yaml:")
    assert "alias" in message and "100000" in message


def test_a_recursive_alias_is_refused():
    assert refusal("stack: s\nx: &x [*x, *x]\n").startswith(
        "stack.yaml:2: an alias refers to a node that contains it")


def test_ordinary_alias_reuse_still_loads():
    services = "".join(f"  s{i}: {{<<: *common, image: img{i}}}\n" for i in range(100))
    text = "stack: s\nx-common: &common {network: none, env: {A: '1', B: '2'}}\ncontainers:\n" + services
    with pytest.raises(SpecError) as info:              # x-common is not a spec key, the rest is fine
        load(text)
    assert 'unknown key "x-common"' in str(info.value) and "alias" not in str(info.value)


def test_an_oversized_file_is_refused_before_parsing():
    text = "stack: s\n#" + "x" * MAX_SPEC_BYTES + "\n"
    assert refusal(text) == "stack.yaml: larger than 1 MiB: not read as a spec"


def test_deep_nesting_is_refused():
    assert "nested more than 64 levels" in refusal("stack: s\nx: " + "[" * 100 + "]" * 100 + "\n")
    assert refusal("stack: s\nx: " + "[" * 20000 + "]" * 20000 + "\n").startswith("stack.yaml:")


@pytest.mark.parametrize("value,tag", [
    ("!!python/object/apply:os.system ['echo hi']", "!!python/object/apply:os.system"),
    ("!!python/name:os.system", "!!python/name:os.system"),
    ("!!python/object:object {}", "!!python/object:object"),
    ("!custom x", "!custom"),
    ("!!binary aGVsbG8=", "!!binary"),
    ("!!set {a, b}", "!!set"),
    ("!!omap [{a: 1}]", "!!omap"),
])
def test_unknown_and_unsafe_tags_are_refused(value, tag):
    message = refusal(f"stack: s\ncontainers:\n  web:\n    image: {value}\n")
    assert message.startswith(f"stack.yaml:4 containers.web.image: the YAML tag {tag} is not supported")


@pytest.mark.parametrize("key", ["? [a, b]\n  ", "{a: 1}", "~", "!!python/name:os.system x"])
def test_non_string_keys_are_refused(key):
    text = f"stack: s\ncontainers:\n  {key}: {{image: x}}\n"
    message = refusal(text)
    assert message.startswith("stack.yaml:3 containers.?: keys must be plain strings")


@pytest.mark.parametrize("mac", ["zz:zz", "02:42:ac:11:00:zz", "02:42:ac:11:00", "'02-42-ac-11-00-02x'"])
def test_a_malformed_mac_is_a_spec_error_with_its_line(mac):
    message = refusal(f"stack: s\ncontainers:\n  web:\n    image: x\n    mac: {mac}\n")
    assert message.startswith("stack.yaml:5 containers.web.mac:")


def test_a_bad_merge_value_and_a_bad_int_are_spec_errors():
    assert "stack.yaml:2 a.<<: a merge key (<<) takes a mapping" in refusal("stack: s\na: {<<: 3}\n")
    message = refusal("stack: s\ncontainers:\n  web: {image: x, cpus: !!int abc}\n")
    assert message.startswith("stack.yaml:3 containers.web.cpus: bad value")


def test_a_date_is_the_text_it_spells():
    s = load("stack: s\ncontainers:\n  web: {image: x, labels: {built: 2024-01-02}}\n")
    assert dict(s.containers["web"].labels)["built"] == "2024-01-02"
