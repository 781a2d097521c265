"""conmon's exit command decides, from files only, when there is nothing for it to do."""

import json

import pytest

from reconciler.engine.containers.stop_claim import StopClaim, claimed
from reconciler.exit_hook import nothing_to_do, parse_args


def write_record(cdir, status="exited", token="t1", manually_stopped=False, restarting=False,
                 auto_remove=False):
    cdir.mkdir(exist_ok=True)
    (cdir / "container.json").write_text(json.dumps({
        "state": {"status": status, "token": token, "manually_stopped": manually_stopped,
                  "restarting": restarting},
        "options": {"auto_remove": auto_remove}}))


def test_a_removed_container_needs_nothing(tmp_path):
    assert nothing_to_do(tmp_path / "gone", "t1")


def test_a_held_stop_claim_leaves_the_work_to_its_holder(tmp_path):
    cdir = tmp_path / "c"
    write_record(cdir, status="running")
    assert not nothing_to_do(cdir, "t1")
    with StopClaim(cdir):
        assert claimed(cdir)
        assert nothing_to_do(cdir, "t1")
    assert not claimed(cdir)
    assert not nothing_to_do(cdir, "t1")


def test_two_stoppers_can_hold_the_claim_at_once(tmp_path):
    with StopClaim(tmp_path) as a, StopClaim(tmp_path) as b:
        assert a.fd is not None and b.fd is not None
        assert claimed(tmp_path)


@pytest.mark.parametrize("record,expected", [
    (dict(status="exited", manually_stopped=True), True),      # stopped and reaped already
    (dict(status="exited", restarting=True), True),            # `restart` starts it itself
    (dict(status="exited", token="t0", manually_stopped=True), True),   # a later run's exit
    (dict(status="running", token="t0"), True),                # a later run is going
    (dict(status="running", manually_stopped=True), False),    # not reaped yet
    (dict(status="exited"), False),                            # the restart policy decides
    (dict(status="exited", manually_stopped=True, auto_remove=True), False),   # --rm: removed
])
def test_the_record_says_when_nothing_follows(tmp_path, record, expected):
    cdir = tmp_path / "c"
    write_record(cdir, **record)
    assert nothing_to_do(cdir, "t1") is expected


def test_an_unreadable_record_is_left_to_the_engine(tmp_path):
    cdir = tmp_path / "c"
    cdir.mkdir()
    (cdir / "container.json").write_text("{not json")
    assert not nothing_to_do(cdir, "t1")


def test_arguments():
    options, cid, token = parse_args(["--root", "/r", "--container-dir", "/r/c/x", "x", "t"])
    assert options == {"--root": "/r", "--container-dir": "/r/c/x"} and (cid, token) == ("x", "t")
    with pytest.raises(ValueError):
        parse_args(["--root", "/r", "x"])
    with pytest.raises(ValueError):
        parse_args(["--root"])


def test_the_hook_loads_no_cli_and_no_engine_before_it_needs_them():
    # conmon starts one per container at the end of a down: what it imports is paid 100 times
    import subprocess
    import sys
    code = ("import sys, reconciler.exit_hook; "
            "print(sorted(m for m in sys.modules if m in ('click', 'reconciler.cli', 'reconciler.engine.engine', "
            "'reconciler.engine.containers.exit_cleanup', 'reconciler.core.layout', 'dataclasses')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
