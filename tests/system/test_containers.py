"""The container lifecycle end to end through the real CLI: runc, conmon, overlayfs, cgroups.

Every test uses `dmc` (tests/fixtures/containers.py): its containers are force-removed afterwards
and nothing (process, mount, runc state, cgroup) may be left under its root.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.containers import inspect, leftovers, wait_until
from tests.fixtures.registry import DIR, Symlink

NONE = ("--network", "none")


def run(dmc, *args, check=False, **kw):
    return dmc("run", "--rm", *NONE, *args, check=check, **kw)





# --------------------------------------------------------------------------- image config

@pytest.fixture(scope="module")
def configured_ref(image_builder):
    """busybox with Entrypoint, Cmd, Env, WorkingDir, User and StopSignal set, and a user db."""
    return str(image_builder(
        "test/configured",
        [{"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n",
          "etc/group": "root:x:0:\napp:x:2345:\nextra:x:3456:app\n",
          "srv/data": DIR}],
        base="busybox", entrypoint=["/bin/sh", "-c"], cmd=['echo "$GREETING from $(pwd) as $(id -u):$(id -g)"'],
        env={"GREETING": "hello"}, workdir="/srv/data", user="app", stop_signal="SIGUSR1"))


def test_image_config_is_honoured(dmc, configured_ref):
    dmc("pull", configured_ref)
    p = run(dmc, configured_ref, check=True)
    assert p.stdout == "hello from /srv/data as 1234:2345\n"


def test_overrides_replace_image_config(dmc, configured_ref, tmp_path):
    dmc("pull", configured_ref)
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\nGREETING=overridden-by-e-later\n")
    p = run(dmc, "-e", "GREETING=hi", "--env-file", str(env_file), "-w", "/tmp", "-u", "0:0",
            "-h", "myhost", configured_ref,
            'echo "$GREETING $FROM_FILE $(pwd) $(id -u):$(id -g) $(hostname) $HOSTNAME"', check=True)
    assert p.stdout == "hi yes /tmp 0:0 myhost myhost\n"
    p = run(dmc, "--entrypoint", "/bin/echo", configured_ref, "plain", "args", check=True)
    assert p.stdout == "plain args\n"           # a new entrypoint drops the image's Cmd
    p = run(dmc, "-u", "app:extra", configured_ref, "id -G", check=True)
    assert p.stdout.split() == ["3456"] or "3456" in p.stdout.split()


def test_user_resolution_and_errors(dmc, configured_ref):
    dmc("pull", configured_ref)
    p = run(dmc, "-u", "app", configured_ref, 'echo $(id -u) $(id -G) $HOME', check=True)
    uid, *groups, home = p.stdout.split()
    assert uid == "1234" and "2345" in groups and "3456" in groups and home == "/home/app"
    p = run(dmc, "-u", "nosuchuser", configured_ref, "true")
    assert p.returncode == 125
    assert "unable to find user nosuchuser" in p.stderr


def test_hostname_defaults_to_short_id_and_etc_files(dmc, busybox):
    cid = dmc("run", "-d", *NONE, busybox, "sleep", "60").stdout.strip()
    p = dmc("logs", cid)
    out = dmc("run", "--rm", *NONE, busybox, "sh", "-c", "hostname; cat /etc/hostname; grep -c localhost /etc/hosts; test -f /etc/resolv.conf && echo resolv").stdout.split()
    assert len(out[0]) == 12 and out[0] == out[1] and int(out[2]) >= 1 and out[3] == "resolv"
    assert inspect(dmc, cid)["Config"]["Hostname"] == cid[:12]
    del p


def test_read_only_rootfs(dmc, busybox):
    p = run(dmc, "--read-only", busybox, "sh", "-c", "touch /x && echo wrote; touch /tmp/y 2>/dev/null || echo refused")
    assert p.stdout.strip().splitlines()[-1] == "refused" and "wrote" not in p.stdout
    p = run(dmc, "--read-only", "--tmpfs", "/scratch", busybox, "sh", "-c", "touch /scratch/ok && echo ok")
    assert p.stdout == "ok\n"
    p = run(dmc, "--read-only", busybox, "sh", "-c", "echo x >> /etc/hosts 2>/dev/null && echo wrote || echo refused")
    assert p.stdout == "refused\n"                    # as Docker: the /etc files are read-only too


# --------------------------------------------------------------------------- exit codes

@pytest.mark.parametrize("cmd,code", [(["true"], 0), (["sh", "-c", "exit 3"], 3),
                                      (["/nonexistent"], 127), (["/etc/passwd"], 126)])
def test_exit_codes(dmc, busybox, cmd, code):
    p = run(dmc, busybox, *cmd)
    assert p.returncode == code, p.stderr
    if code in (126, 127):
        assert p.stderr.strip()


def test_engine_errors_exit_125(dmc, busybox):
    assert run(dmc, "-m", "1k", busybox, "true").returncode == 125
    assert run(dmc, "--ulimit", "nofile=10:5", busybox, "true").returncode == 125
    assert run(dmc, "-v", "./relative:/x", busybox, "true").returncode == 125     # neither a volume name nor an absolute path
    assert run(dmc, "127.0.0.1:1/nosuch/image", "true").returncode == 125
    assert dmc("ps", "-aq").stdout == ""       # no failed create left a container behind


def test_command_not_found_leaves_created_container(dmc, busybox):
    p = dmc("run", "--name", "nf", *NONE, busybox, "nosuchcmd", check=False)
    assert p.returncode == 127
    info = inspect(dmc, "nf")
    assert info["State"]["Status"] == "created" and info["State"]["ExitCode"] == 127
    assert "not found" in info["State"]["Error"]
    assert dmc("rm", "nf").returncode == 0


# --------------------------------------------------------------------------- stop, kill, wait

def test_stop_sends_term_then_kill(dmc, busybox):
    dmc("run", "-d", "--name", "trap", *NONE, busybox, "sh", "-c",
        "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done")
    wait_until(lambda: "ready" in dmc("logs", "trap").stdout, what="trap ready")
    dmc("stop", "-t", "10", "trap")
    info = inspect(dmc, "trap")
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 7
    assert "got-term" in dmc("logs", "trap").stdout

    dmc("run", "-d", "--name", "deaf", *NONE, busybox, "sh", "-c",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done")
    wait_until(lambda: "ready" in dmc("logs", "deaf").stdout, what="deaf ready")
    t0 = time.monotonic()
    dmc("stop", "-t", "1", "deaf")
    assert time.monotonic() - t0 >= 1.0                # the grace time was given
    assert inspect(dmc, "deaf")["State"]["ExitCode"] == 137


def test_image_stop_signal_is_used(dmc, configured_ref):
    dmc("pull", configured_ref)
    dmc("run", "-d", "--name", "usr1", *NONE, "-u", "0", "--entrypoint", "sh", configured_ref, "-c",
        "trap 'echo got-usr1; exit 5' USR1; echo ready; while true; do sleep 0.1; done")
    wait_until(lambda: "ready" in dmc("logs", "usr1").stdout, what="ready")
    dmc("stop", "usr1")
    assert inspect(dmc, "usr1")["State"]["ExitCode"] == 5


def test_kill_with_signal_and_wait(dmc, busybox):
    dmc("run", "-d", "--name", "k", *NONE, busybox, "sh", "-c",
        "trap 'exit 42' USR2; echo ready; while true; do sleep 0.1; done")
    wait_until(lambda: "ready" in dmc("logs", "k").stdout, what="ready")
    dmc("kill", "-s", "USR2", "k")
    assert dmc("wait", "k").stdout.strip() == "42"
    p = dmc("kill", "k", check=False)
    assert p.returncode != 0 and "not running" in p.stderr


def test_restart_and_start_again(dmc, busybox):
    dmc("create", "--name", "r", *NONE, busybox, "sh", "-c", "echo run; sleep 60")
    assert "Created" in dmc("ps", "-a").stdout
    dmc("start", "r")
    assert not {"volatile", "fsync=volatile"} & set(_rootfs_options(dmc, "r"))   # kept: synced
    pid1 = inspect(dmc, "r")["State"]["Pid"]
    dmc("restart", "-t", "1", "r")
    info = inspect(dmc, "r")
    assert info["State"]["Running"] and info["State"]["Pid"] != pid1
    dmc("stop", "-t", "0", "r")
    assert inspect(dmc, "r")["State"]["ExitCode"] == 137
    assert dmc("logs", "r").stdout == "run\nrun\n"


def test_start_attach_streams_and_returns_code(dmc, busybox):
    dmc("create", "--name", "sa", *NONE, busybox, "sh", "-c", "echo out; echo err >&2; exit 4")
    p = dmc("start", "-a", "sa", check=False)
    assert p.returncode == 4 and p.stdout == "out\n" and p.stderr == "err\n"


# --------------------------------------------------------------------------- rm

def test_rm_refuses_running_and_force_leaves_nothing(dmc, busybox, root):
    cid = dmc("run", "-d", "--name", "victim", *NONE, "--storage-opt", "size=16m", busybox,
              "sleep", "60").stdout.strip()
    p = dmc("rm", "victim", check=False)
    assert p.returncode != 0 and "running" in p.stderr
    assert leftovers(root, [cid])["mounts"]
    dmc("rm", "-f", "victim")
    left = leftovers(root, [cid])
    assert not any(left.values()), left
    assert not (root / "overlay" / cid).exists()
    assert not (root / "overlay-containers" / cid).exists()
    assert dmc("ps", "-aq").stdout == ""


def test_rm_removes_a_cgroup_runc_left_behind(dmc, busybox, root):
    # runc delete gives up on a cgroup directory that stays busy for a moment; with runc's state
    # gone, only rm can still remove it
    from reconciler.adapters import cgroups
    cid = dmc("create", "--name", "stray", *NONE, busybox, "true").stdout.strip()
    stray = cgroups.find_cgroup(cgroups_path=f"/docker-mini/{cid}")
    for d in stray.paths.values():
        os.makedirs(d)
    try:
        dmc("rm", "stray")
        assert not stray.exists()
    finally:
        cgroups.remove_cgroup(stray)


def test_run_rm_leaves_nothing(dmc, busybox, root):
    run(dmc, busybox, "sh", "-c", "echo x > /file", check=True)
    assert not any(leftovers(root).values())
    assert not [n for n in os.listdir(root / "overlay") if len(n) == 64 and n not in _layer_dirs(root)]


def _layer_dirs(root: Path) -> set[str]:
    return {p.stem for p in (root / "overlay-layers").glob("*.json")}


def test_detached_rm_removes_itself_after_exit(dmc, busybox):
    cid = dmc("run", "-d", "--rm", *NONE, busybox, "true").stdout.strip()
    wait_until(lambda: cid[:12] not in dmc("ps", "-aq").stdout, what="auto-removal")


# --------------------------------------------------------------------------- ps and inspect

def test_ps_after_external_kill_shows_137(dmc, busybox):
    dmc("run", "-d", "--name", "ext", *NONE, busybox, "sleep", "60")
    pid = inspect(dmc, "ext")["State"]["Pid"]
    assert pid > 0
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: "Exited (137)" in dmc("ps", "-a").stdout, what="Exited (137)")
    assert dmc("ps", "-q").stdout == ""
    info = inspect(dmc, "ext")
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137
    assert not info["State"]["OOMKilled"]


def test_ps_columns_and_formats(dmc, busybox):
    dmc("run", "-d", "--name", "up", *NONE, "-l", "io.docker-mini.stack=web", busybox, "sleep", "60")
    dmc("run", "--name", "done", *NONE, busybox, "sh", "-c", "exit 2", check=False)
    dmc("create", "--name", "fresh", *NONE, busybox, "true")
    table = dmc("ps", "-a").stdout.splitlines()
    header = table[0]
    for col in ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", "STACK"):
        assert col in header
    rows = {line.split()[-1] if "web" not in line else "up": line for line in table[1:]}
    assert "Up " in rows["up"] and "web" in rows["up"]
    assert "Exited (2)" in rows["done"] and " ago" in rows["done"]
    assert "Created" in rows["fresh"]
    assert [line.split()[-1] for line in dmc("ps").stdout.splitlines()[1:]] == ["web"]
    items = [json.loads(line) for line in dmc("ps", "-a", "--format", "json").stdout.splitlines()]
    assert {i["Names"] for i in items} == {"up", "done", "fresh"}
    assert {i["State"] for i in items} == {"running", "exited", "created"}
    assert dmc("ps", "-a", "--format", "{{.Names}}:{{.State}}", "-f", "name=done").stdout == "done:exited\n"
    assert len(dmc("ps", "-aq").stdout.split()) == 3


def test_inspect_shape(dmc, busybox):
    dmc("run", "-d", "--name", "ins", *NONE, "-m", "64m", "--cpus", "0.5", "--pids-limit", "50",
        "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--read-only", "--restart", "on-failure:3",
        "-l", "a=b", busybox, "sleep", "60")
    info = inspect(dmc, "ins")
    assert info["Name"] == "/ins" and len(info["Id"]) == 64
    assert info["Path"] == "sleep" and info["Args"] == ["60"]
    st = info["State"]
    assert st["Status"] == "running" and st["Running"] and st["Pid"] > 0 and st["ExitCode"] == 0
    assert st["StartedAt"].endswith("Z") and st["FinishedAt"].startswith("0001-")
    hc = info["HostConfig"]
    assert hc["Memory"] == 64 << 20 and hc["NanoCpus"] == 500_000_000 and hc["PidsLimit"] == 50
    assert hc["ReadonlyRootfs"] and hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["MKNOD"]
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert info["Config"]["Labels"]["a"] == "b" and info["Config"]["Cmd"] == ["sleep", "60"]
    assert dmc("inspect", "-f", "{{.State.Status}} {{.HostConfig.Memory}}", "ins").stdout == f"running {64 << 20}\n"
    p = dmc("inspect", "nosuchthing", check=False)
    assert p.returncode != 0 and "No such object" in p.stderr


def test_inspect_falls_back_to_images(dmc, busybox):
    data = json.loads(dmc("inspect", busybox).stdout)
    assert data[0]["Id"].startswith("sha256:")


def test_logs_tail_timestamps_and_follow(dmc, busybox):
    dmc("run", "-d", "--name", "lg", *NONE, busybox, "sh", "-c",
        "trap 'echo last; exit 0' USR1; for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; "
        "while true; do sleep 0.1; done")
    wait_until(lambda: "oops" in dmc("logs", "lg").stderr, what="log lines")
    tail = dmc("logs", "--tail", "3", "lg")                 # both streams count
    assert tail.stdout == "line4\nline5\n" and tail.stderr == "oops\n"
    stamped = dmc("logs", "-t", "lg").stdout.splitlines()[0]
    ts, line = stamped.split(" ", 1)
    assert line == "line1" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", ts)
    followed = {}
    t = threading.Thread(target=lambda: followed.setdefault("p", dmc("logs", "-f", "lg", timeout=60)))
    t.start()
    time.sleep(1)
    assert t.is_alive()                                     # -f keeps following a running container
    dmc("kill", "-s", "USR1", "lg")
    t.join(60)
    assert followed["p"].stdout.endswith("line5\nlast\n") and followed["p"].stderr == "oops\n"


def test_name_conflicts_and_generated_names(dmc, busybox):
    dmc("create", "--name", "same", *NONE, busybox, "true")
    p = dmc("create", "--name", "same", *NONE, busybox, "true", check=False)
    assert p.returncode != 0 and "already in use" in p.stderr
    cid = dmc("create", *NONE, busybox, "true").stdout.strip()
    name = inspect(dmc, cid)["Name"]
    assert name.startswith("/") and "_" in name
    assert inspect(dmc, cid[:8])["Id"] == cid            # unique id prefixes resolve


# --------------------------------------------------------------------------- mounts

def test_bind_mounts_and_tmpfs(dmc, busybox, tmp_path):
    host = tmp_path / "share"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    p = run(dmc, "-v", f"{host}:/data", "-v", f"{host}:/ro:ro", "--tmpfs", "/cache:size=1m",
            busybox, "sh", "-c", "cat /data/in.txt; echo back > /data/out.txt; "
            "touch /ro/x 2>/dev/null || echo ro-refused; grep /cache /proc/mounts | grep -c tmpfs",
            check=True)
    assert p.stdout.splitlines() == ["from host", "ro-refused", "1"]
    assert (host / "out.txt").read_text() == "back\n"


def test_mount_destination_cannot_escape_through_symlinks(dmc, image_builder, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    ref = str(image_builder("test/escape", [{"escape": Symlink("/../../../../" + str(outside).lstrip("/")),
                                             "rel": Symlink("../../../../../../" + str(outside).lstrip("/"))}],
                            base="busybox"))
    dmc("pull", ref)
    src = tmp_path / "src"
    src.mkdir()
    (src / "marker").write_text("m")
    for dest in ("/escape/sub", "/rel/sub"):
        p = run(dmc, "-v", f"{src}:{dest}", ref, "sh", "-c", f"cat {dest}/marker", check=False)
        assert p.returncode == 0, p.stderr
    assert list(outside.iterdir()) == []               # the host directory was never touched


# --------------------------------------------------------------------------- concurrency and crashes

def test_files_planted_in_the_rootfs_are_not_followed_when_read_from_the_host(tmp_path):
    """The engine reads the container's /etc/passwd and /etc/group on the host (start, exec -u).
    Root in the container may plant a FIFO (the read would block the engine under its lock), a
    device node (the host would open its device) or a symlink out: all read as absent."""
    import os

    from reconciler.engine.containers import read_in_rootfs

    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (tmp_path / "secret").write_text("host secret\n")
    os.mkfifo(rootfs / "etc" / "passwd")
    os.mknod(rootfs / "etc" / "group", 0o600 | 0o020000, os.makedev(1, 3))       # char 1,3
    os.symlink(str(tmp_path / "secret"), rootfs / "etc" / "shadow")
    (rootfs / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    assert read_in_rootfs(rootfs, "/etc/passwd") is None
    assert read_in_rootfs(rootfs, "/etc/group") is None
    assert read_in_rootfs(rootfs, "/etc/shadow") is None          # resolved inside: absent
    assert read_in_rootfs(rootfs, "/etc/hosts") == "127.0.0.1 localhost\n"


def test_exec_user_lookup_survives_a_planted_fifo(dmc, busybox):
    dmc("run", "-d", "--name", "trap", *NONE, busybox, "sh", "-c",
        "rm /etc/passwd && mkfifo /etc/passwd && echo planted && sleep 1000")
    wait_until(lambda: "planted" in dmc("logs", "trap").stdout, what="the fifo")
    p = dmc("exec", "-u", "nobody", "trap", "id", check=False, timeout=30)
    assert p.returncode != 0 and "nobody" in p.stderr
    # the engine is not stuck (runc itself, inside the container, would block on that FIFO as
    # it does under Docker: that harms only the container that planted it)
    assert "trap" in dmc("ps", timeout=30).stdout
    dmc("stop", "-t", "1", "trap", timeout=30)


def test_concurrent_runs_and_rm_during_ps(dmc, busybox):
    errors: list[str] = []

    def one(i):
        p = dmc("run", "--rm", *NONE, "--name", f"c{i}", busybox, "sh", "-c", f"echo {i}", check=False)
        if p.returncode != 0 or p.stdout != f"{i}\n":
            errors.append(f"{i}: {p.returncode} {p.stdout!r} {p.stderr!r}")

    for i in range(4):
        dmc("create", "--name", f"keep{i}", *NONE, busybox, "true")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    remover = threading.Thread(target=lambda: [dmc("rm", f"keep{i}") for i in range(4)])
    for t in threads + [remover]:
        t.start()
    listings = []
    while any(t.is_alive() for t in threads + [remover]):
        p = dmc("ps", "-a", "--format", "json", check=False)
        assert p.returncode == 0, p.stderr
        listings.append(p.stdout)
    for t in threads + [remover]:
        t.join()
    assert not errors, errors
    for out in listings:
        for line in out.splitlines():
            json.loads(line)                              # never a torn record
    assert dmc("ps", "-aq").stdout == ""


def test_create_killed_midway_is_not_a_healthy_container(dmc, busybox, root):
    import subprocess
    import sys
    # a create that is SIGKILLed while it holds the lock leaves at most a Dead record
    cmd = [sys.executable, "-m", "reconciler", "--root", str(root), "--config", str(dmc.config_file),
           "create", "--name", "half", *NONE, "--storage-opt", "size=64m", busybox, "true"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: proc.poll() is not None or any(
        (d / "container.json").exists() for d in (root / "overlay-containers").glob("*")
    ) if (root / "overlay-containers").exists() else proc.poll() is not None, timeout=30, what="create started")
    proc.kill()
    proc.wait()
    rows = [json.loads(line) for line in dmc("ps", "-a", "--format", "json").stdout.splitlines()]
    for r in rows:
        assert r["State"] in ("dead", "created"), r
    for r in rows:
        dmc("rm", "-f", r["ID"])
    assert dmc("ps", "-aq").stdout == ""


def test_foreground_run_forwards_signals(dmc, busybox, root):
    import subprocess
    import sys
    cmd = [sys.executable, "-m", "reconciler", "--root", str(root), "--config", str(dmc.config_file),
           "run", "--rm", "--name", "fg", *NONE, busybox, "sh", "-c",
           "trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 0.1; done"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 9 and out == "got-term\n", err
    assert dmc("ps", "-aq").stdout == ""                     # --rm still removed it


def test_bridge_ports_in_ps_and_inspect(dmc, busybox):
    from tests.fixtures.registry import free_port
    port = free_port()
    dmc("run", "-d", "--name", "web", "-p", f"{port}:80", busybox, "httpd", "-f", "-p", "80")
    row = [line for line in dmc("ps").stdout.splitlines() if line.endswith("web")][0]
    assert f"0.0.0.0:{port}->80/tcp" in row
    info = inspect(dmc, "web")
    assert info["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert info["HostConfig"]["NetworkMode"] == "bridge"
    assert info["NetworkSettings"].get("IPAddress")
    dmc("kill", "web")                                  # a stopped container binds nothing: no PORTS
    row = [line for line in dmc("ps", "-a").stdout.splitlines() if line.endswith("web")][0]
    assert "->80/tcp" not in row and "Exited (137)" in row


def test_long_root_attaches_through_the_socket_dir(busybox_ref, config_file, tmp_path):
    """A bundle path too long for a unix socket (the default /var/lib/docker-mini is one):
    conmon's attach socket is reached through a short symlink dir, removed afterwards."""
    import hashlib
    import subprocess
    import sys
    from tests.fixtures.containers import assert_nothing_left
    root = tmp_path / ("long" * 20) / "root"
    root.mkdir(parents=True)
    base = [sys.executable, "-m", "reconciler", "--root", str(root), "--config", str(config_file)]
    try:
        p = subprocess.run(base + ["run", "--rm", *NONE, busybox_ref, "sh", "-c", "echo hi; sleep 0.3; echo bye"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and p.stdout == "hi\nbye\n", p.stderr
        sock_dir = Path("/run/docker-mini") / hashlib.sha256(str(root).encode()).hexdigest()[:12]
        assert not sock_dir.exists()
        assert_nothing_left(root)
    finally:
        ids = subprocess.run(base + ["ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(base + ["rm", "-f", *ids], capture_output=True)


def test_a_root_spelled_two_ways_is_one_root(busybox_ref, config_file, tmp_path):
    """`--root /x/` and `--root /x` are the same root: a detached container (conmon, so the
    attach socket goes through the socket dir for a long root) created through one spelling
    and removed through the other leaves nothing, not even its link in /run/docker-mini."""
    import hashlib
    import subprocess
    import sys
    from tests.fixtures.containers import assert_nothing_left
    root = tmp_path / ("long" * 20) / "root"
    root.mkdir(parents=True)

    def dm(spelling: str, *args: str):
        return subprocess.run([sys.executable, "-m", "reconciler", "--root", spelling,
                               "--config", str(config_file), *args],
                              capture_output=True, text=True, timeout=120)

    sock_dir = Path("/run/docker-mini") / hashlib.sha256(str(root).encode()).hexdigest()[:12]
    try:
        p = dm(f"{root}//", "run", "-d", *NONE, busybox_ref, "sleep", "100")
        assert p.returncode == 0, p.stderr
        cid = p.stdout.strip()
        assert (sock_dir / cid[:12]).is_symlink()          # the spelling does not name the dir
        p = dm(str(root), "rm", "-f", cid)
        assert p.returncode == 0, p.stderr
        assert not sock_dir.exists()
        assert_nothing_left(root)
    finally:
        ids = dm(str(root), "ps", "-aq").stdout.split()
        if ids:
            dm(str(root), "rm", "-f", *ids)


def _rootfs_options(dmc, name: str) -> list[str]:
    from reconciler.adapters import overlay
    merged = f"{dmc.root}/overlay/{inspect(dmc, name)['Id']}/merged"
    return overlay.mounts()[merged][2].split(",")


def test_restart_keeps_an_auto_remove_container(dmc, busybox):
    dmc("run", "-d", "--rm", "--name", "rr", *NONE, busybox, "sleep", "60")
    # as Podman's: a --rm container's rootfs skips syncs (it is thrown away at the end)
    assert {"volatile", "fsync=volatile"} & set(_rootfs_options(dmc, "rr"))
    dmc("restart", "-t", "0", "rr")             # mounted again over the kernel's volatile mark
    assert inspect(dmc, "rr")["State"]["Running"]
    dmc("stop", "-t", "0", "rr")
    wait_until(lambda: "rr" not in dmc("ps", "-a", "--format", "{{.Names}}").stdout.split(), what="removal")
