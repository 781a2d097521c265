"""A spec directory fails closed (issue 12, item 4): a *.yaml entry that cannot be read is an
error naming it, never an absence. apply, plan and down refuse (exit 1) and change nothing; a
watcher keeps the last good spec. In every case the container the entry defined keeps running."""

from __future__ import annotations

import os
import signal

import pytest

from tests.fixtures.stacks import (names, net, pid, running_pid, watch, write_spec)  # noqa: F401 (fixtures)


def dangling_symlink(path):
    path.symlink_to(path.parent / "gone.yaml")


def fifo(path):
    os.mkfifo(path)


def directory(path):
    path.mkdir()


def dev_zero(path):
    path.symlink_to("/dev/zero")


def symlink_loop(path):
    path.symlink_to(path)          # open() fails (ELOOP): unreadable even for root


def not_text(path):
    path.write_bytes(b"stack: shop\ncontainers: \xff\xfe\n")


def oversized(path):
    path.write_text("# " + "x" * (1 << 20) + "\n")


BAD = {"dangling symlink": dangling_symlink, "FIFO": fifo, "directory named db.yaml": directory,
       "symlink to /dev/zero": dev_zero, "unreadable (symlink loop)": symlink_loop,
       "not UTF-8": not_text, "over 1 MiB": oversized}


def two_file_stack(d, image):
    d.mkdir()
    write_spec(d / "a.yaml", image, {"web": "    network: none\n"})
    write_spec(d / "db.yaml", image, {"db": "    network: none\n"})


@pytest.mark.parametrize("case", list(BAD))
def test_apply_plan_and_down_refuse_and_change_nothing(net, dmc, busybox_ref, tmp_path, case):
    d = tmp_path / "spec"
    two_file_stack(d, busybox_ref)
    dmc("apply", "-f", str(d))
    before = {n: pid(dmc, n) for n in ("shop-db", "shop-web")}

    (d / "db.yaml").unlink()
    BAD[case](d / "db.yaml")
    for command in (["apply"], ["plan"], ["down"], ["apply", "--dry-run"]):
        r = dmc(*command, "-f", str(d), check=False)
        assert r.returncode == 1, (command, r.stdout, r.stderr)
        assert str(d / "db.yaml") in r.stderr and "Traceback" not in r.stderr, (command, r.stderr)
        assert "remove" not in r.stdout
    assert names(dmc) == ["shop-db", "shop-web"]
    assert {n: pid(dmc, n) for n in before} == before


def test_watch_keeps_the_last_good_spec_and_logs_the_entry(watch, dmc, busybox_ref, tmp_path):
    d = tmp_path / "spec"
    two_file_stack(d, busybox_ref)
    w = watch(d, interval=0.5)
    w.wait_for("the stack to run", lambda: running_pid(dmc, "shop-web") and running_pid(dmc, "shop-db"))
    db_pid = running_pid(dmc, "shop-db")
    entry = d / "db.yaml"

    def reports():
        return [e for e in w.events() if e["event"].startswith("invalid spec")
                and any(str(entry) in x for x in e.get("errors", []))]

    for case in ("FIFO", "dangling symlink", "symlink to /dev/zero", "directory named db.yaml"):
        seen = len(reports())
        if entry.is_dir() and not entry.is_symlink():
            entry.rmdir()
        else:
            entry.unlink()
        BAD[case](entry)
        w.wait_for(f"the {case} reported", lambda: len(reports()) > seen)
        # a second report (SIGHUP: read again) comes after the pass that followed the first,
        # which reconciled with the last good spec
        w.proc.send_signal(signal.SIGHUP)
        w.wait_for(f"the {case} reported again", lambda: len(reports()) > seen + 1)
        assert running_pid(dmc, "shop-db") == db_pid, case
    assert names(dmc) == ["shop-db", "shop-web"]
    assert not [e for e in w.events() if e.get("action") in ("stop", "remove")]
