"""A compose project on disk: which file a directory stands for, and the .env beside it (no root)."""

from __future__ import annotations

import pytest

from reconciler.core.errors import SpecError
from reconciler.engine.stacks import compose_env, spec_sources


def test_a_directory_holding_a_compose_file_is_that_file(tmp_path):
    (tmp_path / "other.yaml").write_text("stack: x\n")
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    assert [f for f, _ in spec_sources(tmp_path)] == [str(tmp_path / "docker-compose.yml")]
    (tmp_path / "compose.yaml").write_text("services: {}\n")          # compose's order
    assert [f for f, _ in spec_sources(tmp_path)] == [str(tmp_path / "compose.yaml")]


def test_a_directory_of_native_specs_is_unchanged(tmp_path):
    (tmp_path / "a.yaml").write_text("stack: x\n")
    (tmp_path / "b.yml").write_text("stack: x\n")
    assert [f for f, _ in spec_sources(tmp_path)] == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yml")]


def test_dotenv_beside_a_compose_file_the_environment_winning(tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    (tmp_path / ".env").write_text("# settings\nTAG=1.0\nMODE=dev\nQUOTED=\"a b\"\n")
    env = compose_env(spec_sources(compose), {"MODE": "prod"})
    assert (env["TAG"], env["MODE"], env["QUOTED"]) == ("1.0", "prod", "a b")
    native = tmp_path / "stack.yaml"
    native.write_text("stack: x\n")
    assert "TAG" not in compose_env(spec_sources(native), {})          # a native spec: no .env


def test_an_unreadable_dotenv_is_an_error_not_an_absence(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / ".env").mkdir()
    with pytest.raises(SpecError, match=r"\.env: a directory"):
        compose_env(spec_sources(tmp_path), {})


def test_dotenv_syntax(tmp_path):
    from reconciler.core.spec.compose import parse_dotenv

    text = "A=1 # note\nexport B='x # y'\nC=\"l1\\nl2\"\n\n# c\nD=\nE=a=b\n"
    assert parse_dotenv(text, ".env") == {"A": "1", "B": "x # y", "C": "l1\nl2", "D": "", "E": "a=b"}
    with pytest.raises(SpecError, match=r"\.env:2"):
        parse_dotenv("A=1\nnot a line\n", ".env")
