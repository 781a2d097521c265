"""A spec directory fails closed: an entry that cannot be read is an error naming it, never an
absence (which would plan the removal of the containers it defines)."""

from __future__ import annotations

import os

import pytest

from reconciler.core.errors import SpecError
from reconciler.engine.stacks import MAX_FILE_BYTES, spec_sources

GOOD = "stack: shop\ncontainers:\n  web:\n    image: busybox\n"


def bad_dangling(d):
    (d / "b.yaml").symlink_to(d / "nowhere.yaml")


def bad_fifo(d):
    os.mkfifo(d / "b.yaml")


def bad_directory(d):
    (d / "b.yaml").mkdir()


def bad_dev_zero(d):
    (d / "b.yaml").symlink_to("/dev/zero")


def bad_loop(d):
    (d / "b.yaml").symlink_to(d / "b.yaml")


def bad_huge(d):
    (d / "b.yaml").write_text("# " + "x" * MAX_FILE_BYTES + "\n")


def bad_binary(d):
    (d / "b.yaml").write_bytes(b"stack: \xff\xfe\n")


CASES = {
    "dangling symlink": (bad_dangling, "dangling symlink"),
    "fifo": (bad_fifo, "a FIFO, not a regular file"),
    "directory named x.yaml": (bad_directory, "a directory, not a regular file"),
    "symlink to /dev/zero": (bad_dev_zero, "a character device, not a regular file"),
    "symlink loop": (bad_loop, "cannot read"),
    "over the size bound": (bad_huge, "larger than 1024 KiB"),
    "not UTF-8": (bad_binary, "not UTF-8"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_unreadable_entry_is_an_error_naming_it(tmp_path, case):
    make, words = CASES[case]
    (tmp_path / "a.yaml").write_text(GOOD)
    make(tmp_path)
    with pytest.raises(SpecError) as e:
        spec_sources(tmp_path)
    assert str(tmp_path / "b.yaml") in str(e.value) and words in str(e.value)


@pytest.mark.parametrize("case", ["fifo", "symlink to /dev/zero", "over the size bound"])
def test_a_single_spec_file_is_checked_the_same_way(tmp_path, case):
    make, words = CASES[case]
    make(tmp_path)
    with pytest.raises(SpecError, match=words):
        spec_sources(tmp_path / "b.yaml")


def test_every_bad_entry_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    os.mkfifo(tmp_path / "b.yaml")
    (tmp_path / "c.yml").mkdir()
    with pytest.raises(SpecError) as e:
        spec_sources(tmp_path)
    assert [x.message.split(":")[0] for x in e.value.errors] == [str(tmp_path / "b.yaml"),
                                                                 str(tmp_path / "c.yml")]


def test_good_entries_hidden_files_and_other_names(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yml").symlink_to(tmp_path / "a.yaml")
    os.mkfifo(tmp_path / ".swap.yaml")                  # hidden: an editor's, not read
    (tmp_path / "notes.txt").symlink_to(tmp_path / "nowhere")
    assert spec_sources(tmp_path) == [(str(tmp_path / "a.yaml"), GOOD), (str(tmp_path / "b.yml"), GOOD)]
    assert spec_sources(tmp_path / "a.yaml") == [(str(tmp_path / "a.yaml"), GOOD)]


def test_a_missing_path_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="No such file"):
        spec_sources(tmp_path / "none.yaml")
