"""core.jsontext: the json package's results through its C accelerator, without importing it."""

from __future__ import annotations

import json
import math

import pytest

from reconciler.core import jsontext
from reconciler.core.ipv4 import parse_ipv4

VALUES = [
    {"id": "a" * 64, "state": {"pid": 0, "exit_code": -1, "oom_killed": False, "finished_at": None}},
    ["é", "\u2603", "tab\tquote\"backslash\\", "\x00", "😀"],
    [0, -1, 2**70, 1.5, -0.0, 1e300],
    {}, [], "", "x", 0, True, None,
]


@pytest.mark.parametrize("value", VALUES)
def test_round_trip_agrees_with_json(value):
    text = jsontext.dumps(value)
    assert json.loads(text) == value
    assert jsontext.loads(text) == value
    assert jsontext.loads(json.dumps(value, indent=2)) == value       # what older versions wrote
    assert jsontext.loads(text.encode()) == value


def test_compact_and_sorted():
    assert jsontext.dumps({"b": 1, "a": [1, 2]}) == '{"b":1,"a":[1,2]}'
    assert jsontext.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'


def test_constants_parse_as_json_does():
    value = jsontext.loads(' [NaN, Infinity, -Infinity] \n')
    assert math.isnan(value[0]) and value[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("text", ["", "   ", "{", '{"a": 1} x', '{"a": }', "[1,]", '{"a" 1}', "nul"])
def test_malformed_input_is_reported_as_json_reports_it(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        jsontext.loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.lineno, ours.value.colno) == \
        (theirs.value.msg, theirs.value.lineno, theirs.value.colno)


def test_unserializable_value_raises_type_error_and_the_next_call_works():
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        jsontext.dumps({"a": [{1, 2}]})
    with pytest.raises(ValueError, match="Circular reference"):
        jsontext.dumps(cyclic)
    assert jsontext.dumps({"a": [1]}) == '{"a":[1]}'


@pytest.mark.parametrize("text, value", [
    ("10.77.0.1", 0x0A4D0001), ("0.0.0.0", 0), ("255.255.255.255", 2**32 - 1),
    ("256.0.0.1", None), ("01.2.3.4", None), ("1.2.3", None), ("1.2.3.4.5", None),
    ("a.b.c.d", None), ("1.2.3.4 ", None), ("", None), ("::1", None), ("١.2.3.4", None),
])
def test_parse_ipv4_accepts_what_ipaddress_accepts(text, value):
    import ipaddress
    assert parse_ipv4(text) == value
    try:
        expected = int(ipaddress.IPv4Address(text))
    except ValueError:
        expected = None
    assert expected == value


def test_malformed_input_in_a_fresh_interpreter():
    """The accelerator reports its own errors through json.decoder, which a command that has
    not imported json yet does not have: the error must still be json's."""
    import subprocess
    import sys
    probe = ("import sys\nfrom reconciler.core import jsontext\n"
             "for text in ['{\"a\": \"abc', '{\"a\": 1', '[1, tru]']:\n"
             "    try:\n        jsontext.loads(text)\n"
             "    except ValueError as e:\n        print(type(e).__name__, e.msg, e.pos)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["JSONDecodeError Unterminated string starting at 6",
                                "JSONDecodeError Expecting ',' delimiter 7",
                                "JSONDecodeError Expecting value 4"]
