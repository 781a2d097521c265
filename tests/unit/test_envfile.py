"""core.envfile: Docker's --env-file format, shared by `run --env-file` and a spec's env_file."""

import pytest

from reconciler.core.envfile import parse_env_file
from reconciler.core.errors import InvalidArgument


def test_lines_comments_and_bare_keys_from_the_environment():
    env = parse_env_file("# c\n\nA=1\nB\nC=x=y\nMISSING\n  D=indented\n", "f", {"B": "from-env"}.get)
    assert env == ["A=1", "B=from-env", "C=x=y", "D=indented"]


def test_values_are_verbatim_as_docker_reads_them():
    text = "Q=\"quoted\"\nS='single'\nT=trailing  \nE=\n"
    assert parse_env_file(text, "f", lambda k: None) == ['Q="quoted"', "S='single'", "T=trailing  ", "E="]


def test_a_byte_order_mark_is_not_part_of_the_first_name():
    assert parse_env_file("\ufeffA=1\n", "f", lambda k: None) == ["A=1"]


@pytest.mark.parametrize("text,message", [
    ("BAD KEY=1\n", 'f:1: "BAD KEY=1" is not NAME=value'),
    ("A=1\nexport B=2\n", 'f:2: "export B=2" is not NAME=value'),
    ("=value\n", 'f:1: "=value" has no variable name'),
])
def test_malformed_lines_name_file_and_line(text, message):
    with pytest.raises(InvalidArgument) as e:
        parse_env_file(text, "f", lambda k: None)
    assert str(e.value).startswith(message)
