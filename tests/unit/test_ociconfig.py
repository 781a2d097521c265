"""The OCI config builder, from data: image config + options -> config.json (no I/O)."""

from __future__ import annotations

import pytest

from reconciler.core import ociconfig
from reconciler.core import ocilimits
from reconciler.core import ocimounts
from reconciler.core import ociprocess
from reconciler.core import ocisecurity
from reconciler.core import ociusers
from reconciler.core import seccomp
from reconciler.core.errors import InvalidArgument

CID = "0123456789ab" + "c" * 52
PASSWD = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nwww:x:33:\napp:x:1000:\ndocker:x:999:app,www\naudio:x:29:app\n"


def spec(image=None, **kw):
    args = dict(container_id=CID, command=None, entrypoint=None, env=[], workdir=None, user=None,
                hostname=None, stop_signal=None, tty=False)
    args.update(kw)
    return ociprocess.process_spec({"config": image or {"Cmd": ["sh"]}}, **args)


def build(process=None, **kw):
    process = process or spec()
    return ociconfig.build_config(container_id=CID, process=process, exec_user=ociusers.ExecUser(0, 0, (), "/root"),
                           rootfs="/r", **kw)


# --------------------------------------------------------------------------- the process

@pytest.mark.parametrize("image,command,entrypoint,expected", [
    ({"Cmd": ["sh"]}, None, None, ["sh"]),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, None, None, ["/ep", "a"]),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["b", "c"], None, ["/ep", "b", "c"]),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, None, ["/new"], ["/new"]),          # Cmd reset
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["x"], ["/new"], ["/new", "x"]),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["x"], [], ["x"]),                  # --entrypoint ""
])
def test_entrypoint_and_cmd(image, command, entrypoint, expected):
    assert spec(image, command=command, entrypoint=entrypoint).args == expected


def test_no_command_is_an_error():
    with pytest.raises(InvalidArgument, match="no command"):
        spec({"Env": ["A=1"]})


def test_env_merging_and_defaults():
    p = spec({"Cmd": ["sh"], "Env": ["A=1", "B=2"]}, env=["B=3", "C=4"], hostname="h", tty=True)
    assert p.env[0].startswith("PATH=/usr/local/sbin")
    assert "A=1" in p.env and "B=3" in p.env and "B=2" not in p.env and "C=4" in p.env
    assert "HOSTNAME=h" in p.env and "TERM=xterm" in p.env
    p = spec({"Cmd": ["sh"], "Env": ["PATH=/only"]})
    assert [e for e in p.env if e.startswith("PATH=")] == ["PATH=/only"]


def test_hostname_workdir_user_stop_signal():
    p = spec({"Cmd": ["sh"], "WorkingDir": "/srv", "User": "www", "StopSignal": "SIGQUIT"})
    assert p.hostname == CID[:12] and p.cwd == "/srv" and p.user == "www" and p.stop_signal == "SIGQUIT"
    p = spec({"Cmd": ["sh"], "WorkingDir": "/srv", "User": "www"}, workdir="/tmp", user="0", stop_signal="USR1")
    assert (p.cwd, p.user, p.stop_signal) == ("/tmp", "0", "USR1")
    with pytest.raises(InvalidArgument):
        spec(workdir="relative")
    with pytest.raises(InvalidArgument):
        spec(hostname="bad_host!")
    with pytest.raises(InvalidArgument):
        spec(stop_signal="SIGNOPE")


@pytest.mark.parametrize("user,expected", [
    ("", ociusers.ExecUser(0, 0, (), "/root")),
    ("root", ociusers.ExecUser(0, 0, (), "/root")),
    ("www", ociusers.ExecUser(33, 33, (999,), "/var/www")),
    ("app", ociusers.ExecUser(1000, 1000, (999, 29), "/home/app")),
    ("33", ociusers.ExecUser(33, 33, (999,), "/var/www")),
    ("4242", ociusers.ExecUser(4242, 0, (), "/")),
    ("4242:4343", ociusers.ExecUser(4242, 4343, (), "/")),
    ("www:docker", ociusers.ExecUser(33, 999, (), "/var/www")),
    ("app:0", ociusers.ExecUser(1000, 0, (999, 29), "/home/app")),
])
def test_resolve_user(user, expected):
    assert ociusers.resolve_user(user, PASSWD, GROUP) == expected


def test_a_malformed_passwd_or_group_is_a_clear_error():
    with pytest.raises(InvalidArgument, match="non-numeric uid"):
        ociusers.resolve_user("bad", "bad:x:abc:0::/:/bin/sh\n", "")
    with pytest.raises(InvalidArgument, match="unable to find group staff"):
        ociusers.resolve_user("0:staff", "root:x:0:0::/root:/bin/sh\n", "staff:x:zz:\n")


def test_resolve_user_errors():
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        ociusers.resolve_user("nobody", PASSWD, GROUP)
    with pytest.raises(InvalidArgument, match="unable to find group nogroup"):
        ociusers.resolve_user("www:nogroup", PASSWD, GROUP)
    assert ociusers.resolve_user("0", None, None) == ociusers.ExecUser(0, 0, (), "/")     # scratch images
    with pytest.raises(InvalidArgument):
        ociusers.resolve_user("www", None, None)          # no /etc/passwd in the image


# --------------------------------------------------------------------------- security defaults

def test_default_capabilities_are_dockers():
    caps = build()["process"]["capabilities"]
    assert set(caps["bounding"]) == set(ocisecurity.DEFAULT_CAPABILITIES) and len(caps["bounding"]) == 14
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    assert "CAP_SYS_ADMIN" not in caps["effective"]


@pytest.mark.parametrize("add,drop,has,lacks", [
    (["NET_ADMIN"], [], ["CAP_NET_ADMIN", "CAP_CHOWN"], []),
    (["cap_sys_admin"], ["MKNOD"], ["CAP_SYS_ADMIN"], ["CAP_MKNOD"]),
    ([], ["ALL"], [], list(ocisecurity.DEFAULT_CAPABILITIES)),
    (["CHOWN"], ["ALL"], ["CAP_CHOWN"], ["CAP_KILL"]),
    (["ALL"], [], list(ocisecurity.ALL_CAPABILITIES), []),
    (["ALL"], ["SYS_ADMIN"], ["CAP_NET_ADMIN"], ["CAP_SYS_ADMIN"]),
])
def test_cap_add_and_drop(add, drop, has, lacks):
    caps = ocisecurity.effective_capabilities(add, drop)
    assert set(has) <= set(caps) and not set(lacks) & set(caps)


def test_unknown_capability_is_refused():
    with pytest.raises(InvalidArgument, match="unknown capability"):
        ocisecurity.effective_capabilities(["CAP_FLY"], [])


def test_namespaces_mounts_masks():
    cfg = build(network="new", netns_path="/run/netns/x")
    ns = {n["type"]: n for n in cfg["linux"]["namespaces"]}
    assert set(ns) == {"pid", "ipc", "uts", "mount", "network"}
    assert ns["network"]["path"] == "/run/netns/x"
    assert "cgroup" not in ns
    dests = {m["destination"]: m for m in cfg["mounts"]}
    for d in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"):
        assert d in dests
    assert "ro" in dests["/sys"]["options"] and "ro" in dests["/sys/fs/cgroup"]["options"]
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"] and "/proc/sys" in cfg["linux"]["readonlyPaths"]
    assert cfg["linux"]["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    assert cfg["linux"]["cgroupsPath"] == f"/docker-mini/{CID}"
    assert cfg["hostname"] == CID[:12]
    host = build(network="host")
    assert "network" not in {n["type"] for n in host["linux"]["namespaces"]}
    assert "sysctl" not in host["linux"]
    assert "cgroup" in {n["type"] for n in build(cgroup_v2=True)["linux"]["namespaces"]}
    fresh = build(network="new")
    assert {"type": "network"} in fresh["linux"]["namespaces"]


def test_etc_files_and_user_mounts():
    plan = ocimounts.MountPlan(
        volumes=[(ocimounts.parse_volume("/host/a:/data:ro"), "/data"), (ocimounts.parse_volume("/h/shm:/dev/shm"), "/dev/shm")],
        tmpfs=[(ocimounts.parse_tmpfs("/cache:size=1m,exec"), "/cache")],
        etc_files={"/etc/hosts": "/c/hosts", "/etc/hostname": "/c/hostname"})
    cfg = build(mounts=plan, read_only=True)
    by = {m["destination"]: m for m in cfg["mounts"]}
    assert by["/data"]["type"] == "bind" and "ro" in by["/data"]["options"]
    assert "rro" in by["/data"]["options"]          # submounts of /host/a are read-only too
    assert not {"ro", "rro"} & set(by["/dev/shm"]["options"])
    assert by["/dev/shm"]["source"] == "/h/shm" and [m["destination"] for m in cfg["mounts"]].count("/dev/shm") == 1
    assert "noexec" not in by["/cache"]["options"] and "size=1m" in by["/cache"]["options"]
    assert by["/etc/hosts"]["source"] == "/c/hosts"
    assert cfg["root"]["readonly"] is True


def test_seccomp_default_and_unconfined():
    cfg = build()
    sc = cfg["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = {n for r in sc["syscalls"] if r["action"] == "SCMP_ACT_ERRNO" and "args" not in r
              for n in r["names"]}
    for name in ("kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "keyctl",
                 "add_key", "request_key", "bpf", "perf_event_open", "mount", "umount2", "unshare", "setns",
                 "reboot", "swapon", "swapoff", "acct", "open_by_handle_at", "userfaultfd"):
        assert name in denied, name
    assert all(r.get("errnoRet") in (seccomp.EPERM, seccomp.ENOSYS) for r in sc["syscalls"])
    # as Docker's profile on kernels >= 4.8: strace and gdb work without extra capabilities
    assert not {"ptrace", "process_vm_readv", "process_vm_writev"} & denied
    assert "kcmp" in denied
    assert any(r["names"] == ["clone"] and r.get("args") for r in sc["syscalls"])
    assert "seccomp" not in build(security_opt=["seccomp=unconfined"])["linux"]
    admin = build(cap_add=["SYS_ADMIN"])["linux"]["seccomp"]
    admin_denied = {n for r in admin["syscalls"] for n in r["names"]}
    assert "mount" not in admin_denied and "clone" not in admin_denied and "keyctl" in admin_denied


def test_security_opts():
    assert build(security_opt=["no-new-privileges"])["process"]["noNewPrivileges"] is True
    assert build(security_opt=["no-new-privileges:true"])["process"]["noNewPrivileges"] is True
    assert build()["process"]["noNewPrivileges"] is False
    with pytest.raises(InvalidArgument):
        ocisecurity.parse_security_opts(["seccomp=/some/profile.json"])
    with pytest.raises(InvalidArgument):
        ocisecurity.parse_security_opts(["bogus"])


def test_rlimits_are_clamped_to_the_host_hard_limit():
    cfg = build(ulimits=["nproc=100:200", "core=0"], host_rlimits={"RLIMIT_NOFILE": 20000, "RLIMIT_NPROC": 150})
    limits = {r["type"]: (r["soft"], r["hard"]) for r in cfg["process"]["rlimits"]}
    assert limits["RLIMIT_NOFILE"] == (20000, 20000)
    assert limits["RLIMIT_NPROC"] == (100, 150)
    assert limits["RLIMIT_CORE"] == (0, 0)
    unlimited = build(ulimits=["nofile=2048:4096"], host_rlimits={"RLIMIT_NOFILE": -1})
    assert unlimited["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 4096}]


@pytest.mark.parametrize("bad", ["nofile", "nofile=", "bogus=1", "nofile=2:1", "nofile=x"])
def test_bad_ulimits(bad):
    with pytest.raises(InvalidArgument):
        ocilimits.parse_ulimit(bad)


def test_resources_pass_through():
    cfg = build(resources={"memory": {"limit": 1 << 26}, "pids": {"limit": 10}})
    assert cfg["linux"]["resources"]["memory"] == {"limit": 1 << 26}
    assert cfg["linux"]["resources"]["pids"] == {"limit": 10}


# --------------------------------------------------------------------------- parsers

@pytest.mark.parametrize("text,n", [("SIGTERM", 15), ("term", 15), ("KILL", 9), ("9", 9), ("SIGUSR1", 10),
                                    ("RTMIN+2", 36), ("SIGRTMAX", 64)])
def test_parse_signal(text, n):
    assert ociprocess.parse_signal(text) == n


@pytest.mark.parametrize("bad", ["./rel:/x", "/a:rel", "/a", "/a:/:ro", "/a:/b:rw,ro", "/a:/b:xx", "n:/data", "bad name:/data"])
def test_bad_volumes(bad):
    with pytest.raises(InvalidArgument):
        ocimounts.parse_volume(bad)


def test_tmpfs_parsing():
    assert ocimounts.parse_tmpfs("/run") == ocimounts.Tmpfs("/run", ())
    assert ocimounts.parse_tmpfs("/run:size=64m,mode=1777") == ocimounts.Tmpfs("/run", ("size=64m", "mode=1777"))
    for bad in ("rel", "/", "/x:bad opt"):
        with pytest.raises(InvalidArgument):
            ocimounts.parse_tmpfs(bad)


# --------------------------------------------------------------------------- symlinks in the rootfs

def links(table):
    return lambda p: table.get(p)


@pytest.mark.parametrize("path,table,expected", [
    ("/data", {}, "/data"),
    ("/a/b/../c", {}, "/a/c"),
    ("/../../etc", {}, "/etc"),
    ("/escape/sub", {"/escape": "/../../../host"}, "/host/sub"),
    ("/rel/sub", {"/rel": "../../../../host"}, "/host/sub"),
    ("/var/run/x", {"/var/run": "/run"}, "/run/x"),
    ("/a/link/f", {"/a/link": "../b"}, "/b/f"),
    ("/a/link/f", {"/a/link": "sub/dir"}, "/a/sub/dir/f"),
    ("/chain", {"/chain": "/one", "/one": "/two"}, "/two"),
])
def test_resolve_in_rootfs_never_leaves_it(path, table, expected):
    assert ocimounts.resolve_in_rootfs(path, links(table)) == expected


def test_resolve_in_rootfs_loops_are_an_error():
    with pytest.raises(InvalidArgument, match="too many levels"):
        ocimounts.resolve_in_rootfs("/loop/x", links({"/loop": "/loop"}))


@pytest.mark.parametrize("call", [
    lambda: ociprocess.parse_signal("²"),                              # str.isdigit() says yes, int() says no
    lambda: ociusers.resolve_user("²", "root:x:0:0::/root:/bin/sh\n", ""),
    lambda: ociusers.resolve_user("0:²", "", ""),
    lambda: ociusers.resolve_user("99999999999999", "", ""),         # beyond a 32-bit uid: a name, not found
])
def test_odd_digits_and_huge_ids_are_invalid_arguments(call):
    with pytest.raises(InvalidArgument):
        call()
