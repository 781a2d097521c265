"""Container names are kept in an index (<root>/container-names) so that create does not read
every record: a name is refused while a container holds it and free once it is removed, and a
stale or missing index (a killed create or rm, a root from before the index) gives the same
answers as the records."""

from __future__ import annotations

import os
import shutil

from tests.fixtures.containers import inspect

NONE = ("--network", "none")


def names(dmc) -> set[str]:
    return set(dmc("ps", "-a", "--format", "{{.Names}}").stdout.split())


def test_a_name_is_held_until_its_container_is_removed(dmc, busybox):
    dmc("create", "--name", "held", *NONE, busybox, "true")
    p = dmc("create", "--name", "held", *NONE, busybox, "true", check=False)
    assert p.returncode != 0 and "already in use" in p.stderr
    dmc("rm", "held")
    cid = dmc("create", "--name", "held", *NONE, busybox, "true").stdout.strip()
    assert inspect(dmc, "held")["Id"] == cid
    dmc("rm", "held")
    assert names(dmc) == set()


def test_a_stale_link_does_not_hold_a_name(dmc, busybox):
    index = dmc.root / "container-names"
    dmc("create", "--name", "first", *NONE, busybox, "true")     # the index exists now
    os.symlink("ab" * 32, index / "ghost")                      # as a create killed before its record
    dmc("create", "--name", "ghost", *NONE, busybox, "true")
    assert names(dmc) == {"first", "ghost"}
    dmc("rm", "first", "ghost")
    assert not list(index.iterdir())


def test_the_index_is_rebuilt_from_the_records(dmc, busybox):
    dmc("create", "--name", "kept", *NONE, busybox, "true")
    shutil.rmtree(dmc.root / "container-names")                 # a root from before the index
    p = dmc("create", "--name", "kept", *NONE, busybox, "true", check=False)
    assert p.returncode != 0 and "already in use" in p.stderr
    generated = dmc("create", *NONE, busybox, "true").stdout.strip()
    assert os.readlink(dmc.root / "container-names" / "kept") == inspect(dmc, "kept")["Id"]
    dmc("rm", "kept", generated)
    assert names(dmc) == set()
