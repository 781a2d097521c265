"""overlay's remove_tree: deeper than the interpreter's recursion limit, never through a symlink."""

import os
from pathlib import Path

import pytest

from reconciler.adapters.overlay import remove_tree


def _deep(top: Path, depth: int) -> None:
    """top/d/d/.../d (depth levels) with a file at the bottom, made through dir fds."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)


def test_a_tree_deeper_than_the_recursion_limit_is_removed(tmp_path):
    _deep(tmp_path / "t", 1500)
    remove_tree(tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


def test_symlinks_are_removed_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("y")
    (tree / "a" / "link").symlink_to(outside)
    (tree / "dangling").symlink_to(tmp_path / "nowhere")
    remove_tree(str(tree))                      # a str is accepted too
    assert not tree.exists()
    assert (outside / "keep").read_text() == "x"


def test_a_missing_tree_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError):
        remove_tree(tmp_path / "absent")
