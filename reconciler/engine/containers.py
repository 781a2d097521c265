"""Container lifecycle: create, start, stop, kill, restart, remove, wait, list, inspect, update.

Composes the image store, the rw layer (overlay), networking, the OCI config builder and the
runtime (runc + conmon). Every change of state happens under engine.mutation(); reads (ps,
inspect, logs) take no lock and tolerate records that vanish under them.

The record: overlay-containers/<id>/container.json (written atomically):

    {
      "id": "<64 hex>",
      "name": "web",                          # without Docker's leading "/"
      "image": "busybox",                     # as the user gave it
      "image_id": "sha256:<hex>",             # rmi refuses images referenced here
      "image_digest": "sha256:<manifest>" | null,
      "created": "2026-11-28T09:00:00.123456789Z",
      "labels": {...},
      "options": {...},                       # CreateOptions.to_dict(): normalized user options
      "path": "/bin/sh", "args": ["-c", "..."],   # the process run (image config + overrides)
      "config": {"Hostname", "User", "Env", "Cmd", "Entrypoint", "WorkingDir", "StopSignal", ...},
      "network": {...},                       # what engine.network.prepare returned
      "state": {
        "status": "creating" | "created" | "running" | "exited" | "removing",
        "pid": 0, "pid_start": null, "conmon_pid": 0, "started_at": "...", "finished_at": "...",
        "exit_code": 0, "oom_killed": false, "restart_count": 0, "error": "",
        "manually_stopped": false, "creator": [pid, start_time]   # while "creating"
      }
    }

A record stays "creating" until create has finished everything else: a create killed half-way
shows in `ps -a` as Dead (never as a usable container) and `rm` removes what it left.

The status on disk is what docker-mini last did; the observed status (observe()) also reads
conmon's exit file and the pid, so a container that died alone or was killed from outside shows
as exited with its real code. The first mutating command that meets such a container reaps it
(runc delete, network teardown, unmount): see reap().
"""

from __future__ import annotations

import os
import time

from reconciler.core.errors import (ConflictError, ContainerNotFound, ContainerNotRunning,
                                    DockerMiniError, InvalidArgument, ContainerRuntimeError, StorageError)
from reconciler.core.record import Record
from reconciler.core.timestamps import rfc3339

TYPE_CHECKING = False     # typing costs ~3 ms to import; annotations here are only strings
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator

# Lazy imports throughout: `ps` must not pay for image pulls, networking or the config builder.
# Paths are str, and re, json, pathlib and contextlib stay out of `run`'s imports: together they
# cost ~15 ms of every command, more than all the work a `run --rm` does itself.

KILL_WAIT = 10.0          # seconds to wait for the exit after SIGKILL


class CreateOptions:
    """What create/run was asked for, normalized; kept in the record as "options" (to_dict).

    A plain class rather than a dataclass: importing dataclasses costs ~10 ms here, on every
    `run`."""

    # name -> default; list and dict defaults are copied per instance
    DEFAULTS: dict[str, Any] = {
        "name": None,
        "command": None,          # None: the image's Cmd
        "entrypoint": None,       # None: the image's; [] (--entrypoint "") clears it
        "env": [],                # "K=V" (or "K": taken from os.environ)
        "workdir": None,
        "user": None,
        "hostname": None,         # None: the short id
        "read_only": False,
        "cap_add": [],
        "cap_drop": [],
        "security_opt": [],       # "no-new-privileges", "seccomp=unconfined"
        "ulimits": [],            # "nofile=1024:2048"
        "resources": None,        # core.limits.Resources | None (no limits)
        "storage_size": None,     # bytes (--storage-opt size=)
        "volumes": [],            # "/host:/ctr[:ro]"
        "tmpfs": [],              # "/path[:opts]"
        "network": "bridge",      # "bridge" | "none" | "host" | "container:NAME"
        "ip": None,
        "mac": None,
        "ports": [],              # Docker's -p syntax
        "labels": {},
        "restart": "no",          # no | on-failure[:N] | always | unless-stopped
        "stop_signal": None,      # None: the image's StopSignal or SIGTERM
        "stop_timeout": None,     # None: 10 s
        "tty": False,
        "interactive": False,
        "auto_remove": False,
    }
    __slots__ = ("image", *DEFAULTS)

    def __init__(self, image: str, **options: Any):
        unknown = options.keys() - self.DEFAULTS.keys()
        if unknown:
            raise TypeError(f"unknown create options: {', '.join(sorted(unknown))}")
        self.image = image
        for key, default in self.DEFAULTS.items():
            value = options.get(key, default)
            setattr(self, key, value.copy() if value is default and isinstance(value, (list, dict)) else value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CreateOptions) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"CreateOptions({self.to_dict()!r})"

    def to_dict(self) -> dict:
        d = {"image": self.image, **{k: getattr(self, k) for k in self.DEFAULTS}}
        d["resources"] = self.resources.to_dict() if self.resources is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CreateOptions":
        opts = cls(**{k: v for k, v in d.items() if k in cls.__slots__ and k != "resources"})
        if d.get("resources"):
            from reconciler.core.limits import Resources
            opts.resources = Resources.from_dict(d["resources"])
        return opts


class ContainerState(Record):
    """One row of `ps`: the record plus the observed status."""
    __slots__ = ("id", "name", "image", "image_id", "command", "created", "status", "exit_code",
                 "started_at", "finished_at", "pid", "labels", "ports", "record")

    def __init__(self, id: str, name: str, image: str, image_id: str,
                 command: str,                 # Docker's COMMAND column source: path + args joined
                 created: str,                 # RFC 3339
                 status: str,                  # created | running | exited | removing | dead
                 exit_code: int | None, started_at: str | None, finished_at: str | None,
                 pid: int, labels: dict,
                 ports: list,                  # from the network record, for the PORTS column
                 record: dict | None = None):
        self.id, self.name, self.image, self.image_id = id, name, image, image_id
        self.command, self.created, self.status, self.exit_code = command, created, status, exit_code
        self.started_at, self.finished_at, self.pid = started_at, finished_at, pid
        self.labels, self.ports, self.record = labels, ports, record if record is not None else {}

    def __repr__(self) -> str:
        return f"ContainerState(id={self.id[:12]!r}, name={self.name!r}, status={self.status!r})"


# ---------------------------------------------------------------------------------------------
# records


def now_iso() -> str:
    return rfc3339(time.time_ns())


def _iso_of_mtime(path: str) -> str | None:
    try:
        return rfc3339(os.stat(path).st_mtime_ns)
    except FileNotFoundError:
        return None


def _record_path(engine, cid: str) -> str:
    return f"{engine.layout.container_dir(cid)}/container.json"


def _load(engine, cid: str) -> dict | None:
    from reconciler.adapters import statefiles
    try:
        return statefiles.read_json(_record_path(engine, cid), default=None)
    except NotADirectoryError:
        return None


def _save(engine, rec: dict, durable: bool = False) -> None:
    """Atomic always (a killed command leaves the old or the new record); fsynced only for the
    record create publishes (unless --rm): the running/exited states do not outlive the host anyway."""
    from reconciler.adapters import statefiles
    from reconciler.core import jsontext
    path = _record_path(engine, rec["id"])
    if durable:
        statefiles.write_json(path, rec)
    else:
        _write_file(path, (jsontext.dumps(rec, sort_keys=True) + "\n").encode())


def _write_file(path: str, data: bytes, mode: int = 0o600) -> None:
    """Atomic replace without fsync: for files that are regenerated (config.json, etc files)
    or whose loss in a power cut does not matter."""
    directory, name = os.path.split(path)
    tmp = f"{directory}/.{name}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _ids(engine) -> list[str]:
    try:
        return [n for n in os.listdir(engine.layout.containers_dir)
                if len(n) == 64 and not n.startswith(".")]
    except FileNotFoundError:
        return []


def _load_readable(engine, cid: str) -> dict | None:
    """The record, or None if it is gone or unreadable. One corrupt record (a torn write after a
    power cut) must not break ps, names and every other container: `system check` reports it."""
    try:
        return _load(engine, cid)
    except StorageError:
        return None


def unreadable_records(engine) -> list[str]:
    return [cid for cid in _ids(engine)
            if os.path.exists(_record_path(engine, cid))
            and _load_readable(engine, cid) is None]


def all_records(engine) -> list[dict]:
    out = []
    for cid in _ids(engine):
        rec = _load_readable(engine, cid)
        if rec and rec.get("id") == cid:
            out.append(rec)
    return out


def resolve(engine, name_or_id: str) -> dict:
    """The record of the container named or identified (full id, name, or unique id prefix)."""
    key = (name_or_id or "").strip().lstrip("/")
    if not key:
        raise ContainerNotFound("No such container: (empty name)")
    ids = _ids(engine)
    if key in ids:
        rec = _load(engine, key)          # asked for by id: say so if it is unreadable
        if rec:
            return rec
    records = [r for r in (_load_readable(engine, c) for c in ids) if r]
    for rec in records:
        if rec.get("name") == key:
            return rec
    hits = [r for r in records if r["id"].startswith(key.lower())] if _HEX.issuperset(key) else []
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise InvalidArgument(f"multiple containers match id prefix {key!r}: give more characters")
    raise ContainerNotFound(f"No such container: {name_or_id}")


_HEX = frozenset("0123456789abcdefABCDEF")


def _paths(engine, cid: str):
    from reconciler.adapters.runtime import MonitorPaths
    return MonitorPaths(engine.layout.container_dir(cid))


def _socket_dir(engine) -> str:
    """Where conmon puts attach-socket symlinks when the bundle path is too long for a socket."""
    short = f"{engine.layout.root}/s"
    if len(short) + 1 + 12 + len("/attach") <= 100:
        return short
    import hashlib
    return "/run/docker-mini/" + hashlib.sha256(engine.layout.root.encode()).hexdigest()[:12]


def attach_socket_path(engine, rec: dict) -> str:
    """conmon's attach socket of a running container (for attach and foreground run)."""
    from reconciler.adapters.runtime import SUN_PATH_MAX     # the rule Runtime.create follows
    direct = f"{engine.layout.container_dir(rec['id'])}/attach"
    if len(direct) <= SUN_PATH_MAX:
        return direct
    return f"{_socket_dir(engine)}/{rec['id'][:12]}/attach"


# ---------------------------------------------------------------------------------------------
# names


_ADJECTIVES = ("brave", "calm", "clever", "eager", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nimble", "quiet", "quick", "sharp", "steady", "sunny", "tender", "vivid",
               "witty", "zealous", "bold", "bright", "cosmic", "dazzling", "fervent", "gallant")
_NAMES = ("babbage", "bohr", "curie", "darwin", "dijkstra", "euler", "faraday", "fermi", "gauss",
          "hopper", "hypatia", "kepler", "knuth", "lamarr", "lovelace", "maxwell", "meitner",
          "newton", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak")


def _pick(n: int) -> int:
    """A random index below n from the OS's generator (what random.SystemRandom gives, without
    loading the random module on every create: the bias of 32 bits modulo n < 10000 is nil)."""
    return int.from_bytes(os.urandom(4), "little") % n


def generate_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{_ADJECTIVES[_pick(len(_ADJECTIVES))]}_{_NAMES[_pick(len(_NAMES))]}"
        if name not in taken:
            return name
    while True:
        name = f"{_ADJECTIVES[_pick(len(_ADJECTIVES))]}_{_NAMES[_pick(len(_NAMES))]}{1 + _pick(9999)}"
        if name not in taken:
            return name


# ---------------------------------------------------------------------------------------------
# observing


def _oom_killed(engine, rec: dict) -> bool:
    paths = _paths(engine, rec["id"])
    if os.path.exists(paths.oom):
        return True
    if (rec.get("state") or {}).get("monitor") == "cli":
        from reconciler.adapters import runtime as rt
        if os.path.exists(rt.exit_file(paths, rec["id"])):
            return False      # the foreground CLI read the cgroup before runc removed it
    try:
        from reconciler.adapters import cgroups
        from reconciler.core.ociconfig import cgroups_path
        state = cgroups.read_oom(cgroups.find_cgroup(cgroups_path(rec["id"])))
        return bool(state and state.oom_killed)
    except (ImportError, OSError, ValueError):
        return False


def observe(engine, rec: dict, grace: float = 0.3) -> dict:
    """The state as it really is now (a copy): exit files and pids checked, nothing changed."""
    from reconciler.adapters import runtime as rt
    st = dict(rec.get("state") or {})
    status = st.get("status")
    if status == "creating":
        creator = st.get("creator") or [0, None]
        st["status"] = "creating" if rt.pid_alive(creator[0], creator[1]) else "dead"
        return st
    if status != "running":
        return st
    paths = _paths(engine, rec["id"])
    exit_path = rt.exit_file(paths, rec["id"])
    code = rt.read_int(exit_path)
    if code is None and not rt.pid_alive(st.get("pid", 0), st.get("pid_start")):
        # the process is gone: conmon records its status in a moment (well under a millisecond
        # usually: poll finely first, so a foreground `run` does not sleep 10 ms for it), unless
        # conmon died too
        deadline = time.monotonic() + grace
        delay = 0.0005
        while code is None and time.monotonic() < deadline and rt.pid_alive(st.get("conmon_pid", 0)):
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
            code = rt.read_int(exit_path)
        if code is None:
            code = rt.read_int(exit_path)
        if code is None:
            st.update(status="exited", exit_code=255, finished_at=st.get("finished_at") or now_iso(),
                      error=f"the container's monitor ({_monitor_name(st)}) disappeared", pid=0)
            return st
    if code is not None:
        st.update(status="exited", exit_code=code, finished_at=_iso_of_mtime(exit_path) or now_iso(),
                  oom_killed=os.path.exists(paths.oom), pid=0)
    return st


def _monitor_name(state: dict) -> str:
    return "the docker-mini run in front of it" if state.get("monitor") == "cli" else "conmon"


def is_running(engine, rec: dict) -> bool:
    return observe(engine, rec)["status"] == "running"


def reap(engine, rec: dict, save: bool = True) -> dict:
    """Under the lock: a container whose process ended gets its exit recorded and its runtime
    state, network and rootfs mount released. Idempotent; returns the (updated) record.
    save=False: the caller saves the record next (a crash before that only repeats the reap)."""
    st = rec.get("state") or {}
    if st.get("status") != "running":
        return rec
    seen = observe(engine, rec)
    if seen["status"] == "running":
        return rec
    seen["oom_killed"] = bool(seen.get("oom_killed")) or _oom_killed(engine, rec)
    _release_runtime(engine, rec)
    rec["state"] = {**seen, "status": "exited", "pid": 0}
    if save:
        _save(engine, rec)
    return rec


def _release_runtime(engine, rec: dict) -> None:
    """runc state, network wiring and the rootfs mount of a stopped container (best effort
    where a half-done earlier attempt may already have removed parts)."""
    from reconciler.adapters import overlay
    cid = rec["id"]
    engine.runtime.delete(cid, force=True)
    _network_teardown(engine, rec)
    overlay.unmount_rootfs(engine.layout, cid)


def _uses_network_setup(rec: dict) -> bool:
    # --network none needs no host-side wiring: runc makes a fresh namespace with lo only
    return (rec.get("options") or {}).get("network", "bridge") != "none"


def _network_teardown(engine, rec: dict) -> None:
    if not _uses_network_setup(rec):
        return
    from reconciler.engine import network
    network.teardown(engine, rec)


# ---------------------------------------------------------------------------------------------
# create


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _valid_name(name: str) -> bool:
    """Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]*, checked without importing re."""
    return bool(name) and name[0] not in "_.-" and _NAME_CHARS.issuperset(name)


def _normalize(opts: CreateOptions) -> CreateOptions:
    """Validate every option before anything is created; returns a normalized copy."""
    from reconciler.core import ociconfig as oc
    o = CreateOptions.from_dict(opts.to_dict())
    o.resources = opts.resources
    if o.name is not None:
        o.name = o.name.lstrip("/")
        if not _valid_name(o.name):
            raise InvalidArgument(f"Invalid container name ({o.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    env = []
    for item in o.env:
        if "=" in item:
            env.append(item)
        elif item and item in os.environ:
            env.append(f"{item}={os.environ[item]}")
    o.env = env
    oc.effective_capabilities(o.cap_add, o.cap_drop)
    oc.parse_security_opts(o.security_opt)
    for u in o.ulimits:
        oc.parse_ulimit(u)
    for v in o.volumes:
        oc.parse_volume(v)
    for t in o.tmpfs:
        oc.parse_tmpfs(t)
    if o.stop_signal:
        oc.parse_signal(o.stop_signal)
    if o.stop_timeout is not None and o.stop_timeout < -1:
        raise InvalidArgument(f"invalid --stop-timeout {o.stop_timeout}")
    _parse_restart(o.restart)
    if o.auto_remove and o.restart not in ("no", "", None):
        raise InvalidArgument("Conflicting options: --restart and --rm")
    o.restart = o.restart or "no"
    return o


def _parse_restart(policy: str | None) -> tuple[str, int]:
    text = (policy or "no").strip()
    name, _, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy {text!r}",
                              hint="use no, always, unless-stopped or on-failure[:max-retries]")
    if count:
        if name != "on-failure" or not count.isdigit():
            raise InvalidArgument(f"invalid restart policy {text!r}: only on-failure takes a retry count")
        return name, int(count)
    return name, 0


def _image_config(engine, image) -> dict:
    cfg = engine.images.config(image)
    return cfg if isinstance(cfg, dict) else {}


def create(engine, opts: CreateOptions) -> dict:
    """Create a container; returns its record (container.json's content)."""
    from reconciler.core import ociconfig as oc
    from reconciler.core.errors import ImageNotFound

    opts = _normalize(opts)
    try:
        image = engine.images.resolve(opts.image)
    except ImageNotFound:
        from reconciler.engine import images      # only now: pulling needs the registry client
        image = images.ensure_image(engine, opts.image)
    image_config = _image_config(engine, image)
    lowerdirs = engine.layers.lowerdirs(image.layer) if image.layer else []
    cid = os.urandom(32).hex()
    process = oc.process_spec(image_config, container_id=cid, command=opts.command,
                              entrypoint=opts.entrypoint, env=opts.env, workdir=opts.workdir,
                              user=opts.user, hostname=opts.hostname, stop_signal=opts.stop_signal,
                              tty=opts.tty)
    with engine.mutation():
        records = [r for r in all_records(engine) if not _removed_if_orphaned(engine, r)]
        taken = {r.get("name") for r in records}
        if opts.name is None:
            opts.name = generate_name(taken)
        elif opts.name in taken:
            other = next(r for r in records if r.get("name") == opts.name)
            raise ConflictError(f'Conflict. The container name "/{opts.name}" is already in use by '
                                f'container "{other["id"]}". You have to remove (or rename) that '
                                f'container to be able to reuse that name.')
        from reconciler.adapters import runtime as rt
        me = os.getpid()
        cfg = image_config.get("config") or {}
        rec = {
            "id": cid,
            "name": opts.name,
            "image": opts.image,
            "image_id": image.id,
            "image_digest": image.digest,
            "image_layer": image.layer,
            "lowerdirs": lowerdirs,
            "created": now_iso(),
            "labels": {**(cfg.get("Labels") or {}), **opts.labels},
            "options": opts.to_dict(),
            "path": process.args[0],
            "args": process.args[1:],
            "config": {
                "Hostname": process.hostname, "User": process.user, "Env": process.env,
                "Cmd": process.cmd, "Entrypoint": process.entrypoint or None,
                "WorkingDir": process.cwd, "StopSignal": process.stop_signal,
                "Tty": opts.tty, "OpenStdin": opts.interactive,
            },
            "network": {},
            "state": {"status": "creating", "creator": [me, rt.process_start_time(me)], "pid": 0,
                      "exit_code": 0, "restart_count": 0, "oom_killed": False, "error": "",
                      "started_at": None, "finished_at": None},
        }
        cdir = engine.layout.container_dir(cid)
        os.makedirs(cdir, mode=0o700)
        try:
            _save(engine, rec)
            # the image was resolved before the lock: an rmi may have won the race since then
            # (from now on it sees this record and refuses)
            missing = [d for d in lowerdirs if not os.path.isdir(f"{engine.layout.overlay_dir}/{d}")]
            if missing:
                raise ImageNotFound(f"image {opts.image} was removed while the container was being created")
            from reconciler.adapters import overlay
            from reconciler.engine import network
            rec["network"] = network.prepare(engine, cid, opts) or {}
            overlay.create_rw_layer(engine.layout, cid, opts.storage_size)
            _write_etc_files(engine, rec, process.hostname)
            rec["state"] = {k: v for k, v in rec["state"].items() if k != "creator"}
            rec["state"]["status"] = "created"
            # an --rm container is gone once its process ends, which a power cut ends too:
            # its record need not outlive one (two fsyncs saved per `run --rm`)
            _save(engine, rec, durable=not opts.auto_remove)
        except BaseException:
            try:
                _destroy(engine, rec)
            except Exception:
                pass
            raise
    return rec


def _write_etc_files(engine, rec: dict, hostname: str) -> None:
    from reconciler.core import hostsfile, resolvconf
    cdir = engine.layout.container_dir(rec["id"])
    _write_file(f"{cdir}/hostname", f"{hostname}\n".encode(), 0o644)
    _write_file(f"{cdir}/hosts", hostsfile.render_hosts(None, (), hostname=hostname).encode(), 0o644)
    try:
        with open("/etc/resolv.conf") as f:
            host_resolv = f.read()
    except OSError:
        host_resolv = ""
    _write_file(f"{cdir}/resolv.conf", resolvconf.render_resolv_conf(host_resolv).encode(), 0o644)


# ---------------------------------------------------------------------------------------------
# start


def _host_rlimits() -> dict[str, int]:
    import resource
    out = {}
    for name in ("AS", "CORE", "CPU", "DATA", "FSIZE", "LOCKS", "MEMLOCK", "MSGQUEUE", "NICE",
                 "NOFILE", "NPROC", "RSS", "RTPRIO", "RTTIME", "SIGPENDING", "STACK"):
        const = getattr(resource, f"RLIMIT_{name}", None)
        if const is None:
            continue
        hard = resource.getrlimit(const)[1]
        out[f"RLIMIT_{name}"] = -1 if hard == resource.RLIM_INFINITY else hard
    return out


def _rootfs_reader(rootfs: str) -> Callable[[str], str | None]:
    def readlink(rel: str) -> str | None:
        try:
            return os.readlink(f"{rootfs}{rel}")
        except OSError:
            return None
    return readlink


def read_in_rootfs(rootfs: str | os.PathLike, path: str) -> str | None:
    """A small regular file of the container's (its /etc/passwd), read from the host.

    The container's root may have planted a FIFO, a device node or a symlink there: every
    component is opened without following symlinks (a swap after resolving cannot lead out),
    without blocking, and anything but a regular file reads as absent."""
    import stat
    from reconciler.core.ociconfig import resolve_in_rootfs
    rootfs = os.fspath(rootfs)
    parts = [p for p in resolve_in_rootfs(path, _rootfs_reader(rootfs)).split("/") if p]
    if not parts:
        return None
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            parent, fd = fd, os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fd)
            os.close(parent)
        parent, fd = fd, os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | nofollow,
                                 dir_fd=fd)
        os.close(parent)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, 4 << 20).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _mkdir_in_rootfs(rootfs: str, path: str) -> None:
    """Create the (already resolved) directory path inside the rootfs, component by component,
    never through a symlink."""
    from reconciler.core.ociconfig import resolve_in_rootfs
    cur = ""
    for comp in [c for c in path.split("/") if c]:
        cur = resolve_in_rootfs(cur + "/" + comp, _rootfs_reader(rootfs))
        full = f"{rootfs}{cur}"
        if os.path.islink(full):
            return
        if not os.path.exists(full):
            try:
                os.mkdir(full, 0o755)
            except FileExistsError:
                pass
        if not os.path.isdir(full):
            return


def _build_bundle(engine, rec: dict, rootfs: str, netns: str | None) -> None:
    from reconciler.core import ociconfig as oc
    opts = CreateOptions.from_dict(rec["options"])
    cfg = rec["config"]
    process = oc.ProcessSpec(args=[rec["path"], *rec["args"]], env=list(cfg["Env"]), cwd=cfg["WorkingDir"],
                             user=cfg.get("User") or "", hostname=cfg["Hostname"],
                             stop_signal=cfg.get("StopSignal") or "SIGTERM")
    exec_user = oc.resolve_user(process.user, read_in_rootfs(rootfs, "/etc/passwd"),
                                read_in_rootfs(rootfs, "/etc/group"))
    readlink = _rootfs_reader(rootfs)
    plan = oc.MountPlan()
    for spec in opts.volumes:
        vol = oc.parse_volume(spec)
        if not os.path.exists(vol.source):
            os.makedirs(vol.source, mode=0o755, exist_ok=True)   # Docker creates a missing -v source
        plan.volumes.append((vol, oc.resolve_in_rootfs(vol.destination, readlink)))
    for spec in opts.tmpfs:
        t = oc.parse_tmpfs(spec)
        plan.tmpfs.append((t, oc.resolve_in_rootfs(t.destination, readlink)))
    cdir = engine.layout.container_dir(rec["id"])
    for name in ("hostname", "hosts", "resolv.conf"):
        if os.path.exists(f"{cdir}/{name}"):
            plan.etc_files[oc.resolve_in_rootfs("/etc/" + name, readlink)] = f"{cdir}/{name}"
    cwd = oc.resolve_in_rootfs(process.cwd, readlink)
    _mkdir_in_rootfs(rootfs, cwd)
    from reconciler.adapters import cgroups
    res = None
    if opts.resources is not None:
        from reconciler.core.limits import to_oci_resources
        res = to_oci_resources(opts.resources, swap_accounting=cgroups.swap_accounting())
    config = oc.build_config(
        container_id=rec["id"], process=process, exec_user=exec_user, rootfs=str(rootfs),
        read_only=opts.read_only, tty=opts.tty, cap_add=opts.cap_add, cap_drop=opts.cap_drop,
        security_opt=opts.security_opt, ulimits=opts.ulimits, host_rlimits=_host_rlimits(),
        resources=res, network="host" if opts.network == "host" else "new", netns_path=netns,
        mounts=plan, cgroup_v2=cgroups.cgroup_version() == 2, arch=os.uname().machine)
    from reconciler.core import jsontext
    _write_file(f"{cdir}/config.json", jsontext.dumps(config).encode())


def _exit_command(engine, rec: dict, pid_token: str) -> list[str]:
    import sys
    settings = ["--root", engine.layout.root]
    source = engine.config.source
    if source.startswith("/") and os.path.exists(source):
        settings += ["--config", source]
    return [sys.executable, "-m", "reconciler", *settings, "container-cleanup", rec["id"], pid_token]


def start(engine, name_or_id: str, *, on_created: Callable[[dict], Any] | None = None,
          stdin_once: bool = False, by_policy: bool = False) -> dict:
    """Start a created or exited container (no-op if running). on_created(record) is called
    once the process exists but before it runs (attach to it there, so no output is lost).
    conmon runs `container-cleanup` when the process ends (reap, --rm, restart policy).
    stdin_once: the attached user's EOF closes the container's stdin (`run -i`, `start -ai`
    without -t); otherwise it stays open for later attaches (conmon --leave-stdin-open)."""
    from reconciler.adapters import runtime as rt
    with engine.mutation():
        rec, startable = _startable(engine, name_or_id)
        if not startable:
            return rec
        cid = rec["id"]
        runtime = engine.runtime
        paths = _paths(engine, cid)
        opts = rec["options"]
        try:
            _prepare(engine, rec, runtime, paths)
            token = str(time.time_ns())
            pid = runtime.create(
                cid, rec["name"], paths, terminal=bool(opts.get("tty")),
                stdin=bool(opts.get("interactive")), leave_stdin_open=bool(opts.get("interactive")) and not stdin_once,
                exit_command=_exit_command(engine, rec, token),
                socket_dir=_socket_dir(engine))
            _mark_running(engine, rec, pid, rt.read_int(paths.conmon_pidfile) or 0, token, by_policy)
            if on_created is not None:
                on_created(rec)
            runtime.start(cid)
        except BaseException as e:
            _abort_start(engine, rec, e)
            raise
    return rec


def run_attached(engine, name_or_id: str, emit: Callable[[str, bytes], Any], *,
                 on_started: Callable[[Any], Any] | None = None) -> int:
    """Start a container with this process as its monitor (a foreground `run` without -d, -i,
    -t or a restart policy: nothing needs to outlive the CLI), passing its output to
    emit(stream, data) and to its log until it ends; returns its exit code. One `runc run`
    does what conmon, `runc start` and `runc delete` do otherwise. on_started(handle) gets
    something with .signal(signum) for forwarding signals. emit returning False stops that
    stream (the reader went away). Then call finish_attached()."""
    from reconciler.adapters import runtime as rt
    with engine.mutation():
        rec, startable = _startable(engine, name_or_id)
        if not startable:
            raise ConflictError(f"container {name_or_id} is already running")
        cid = rec["id"]
        runtime = engine.runtime
        paths = _paths(engine, cid)
        # a memory limit can OOM-kill: keep the stopped container until its cgroup is read
        keep = bool((rec["options"].get("resources") or {}).get("memory"))
        run = None
        try:
            _prepare(engine, rec, runtime, paths)
            run = runtime.run_attached(cid, paths, keep=keep)
            pid = run.started()
            _mark_running(engine, rec, pid, os.getpid(), str(time.time_ns()), by_policy=False,
                          monitor="cli")
        except BaseException as e:
            if run is not None:
                run.abandon()
            _abort_start(engine, rec, e)
            raise
    if on_started is not None:
        on_started(run)
    log = rt.ContainerLog(paths.log, engine.config.log_max_size)

    def both(stream: str, data: bytes) -> bool | None:
        log.write(stream, data)
        return emit(stream, data)

    try:
        code = run.pump(both)
    finally:
        log.close()
    if keep:
        if _oom_killed(engine, rec):
            _write_file(paths.oom, b"", 0o644)
        runtime.delete(cid, force=True)
    _write_file(rt.exit_file(paths, cid), str(code).encode(), 0o644)
    return code


def finish_attached(engine, container_id: str, auto_remove: bool) -> None:
    """After run_attached: the exit recorded and the runtime state released (or, with --rm,
    the container removed), unless a concurrent command got there first."""
    with engine.mutation():
        rec = _load(engine, container_id)
        if rec is None:
            return
        if auto_remove and not (rec.get("state") or {}).get("restarting"):
            remove(engine, container_id, force=True)       # it reaps first
        else:
            reap(engine, rec)


def _startable(engine, name_or_id: str) -> tuple[dict, bool]:
    """Under the lock: the container's record, and whether it can be started (False: it runs)."""
    rec = reap(engine, resolve(engine, name_or_id))
    st = observe(engine, rec)
    if st["status"] == "running":
        # a start killed between `runc create` and `runc start` left it waiting: finish it
        state = engine.runtime.state(rec["id"]) or {}
        if state.get("status") == "created":
            engine.runtime.start(rec["id"])
        return rec, False
    if st["status"] in ("creating", "dead", "removing"):
        raise ConflictError(f"container {rec['name']} is in state {st['status']} and cannot be "
                            f"started", hint=f"remove it: docker-mini rm -f {rec['name']}")
    _clear_previous_run(engine.runtime, rec["id"], _paths(engine, rec["id"]))
    return rec, True


def _prepare(engine, rec: dict, runtime, paths) -> None:
    """The rootfs mounted, the network wired and the bundle written, ready for runc."""
    from reconciler.adapters import overlay
    rootfs = overlay.mount_rootfs(engine.layout, rec["id"], rec["lowerdirs"],
                                  volatile=bool(rec["options"].get("auto_remove")))
    netns = None
    if _uses_network_setup(rec):
        from reconciler.engine import network
        netns = network.setup(engine, rec)
    _build_bundle(engine, rec, rootfs, netns)


def _mark_running(engine, rec: dict, pid: int, monitor_pid: int, token: str, by_policy: bool,
                  monitor: str = "conmon") -> None:
    """The record says running. monitor: "conmon", or "cli" for a foreground run's own CLI
    (its pid is then in conmon_pid: what observe() checks is the monitor's life)."""
    from reconciler.adapters import runtime as rt
    rec["state"] = {
        **rec["state"], "status": "running", "pid": pid, "pid_start": rt.process_start_time(pid),
        "conmon_pid": monitor_pid, "monitor": monitor, "started_at": now_iso(),
        "finished_at": None, "exit_code": 0, "oom_killed": False, "error": "",
        "manually_stopped": False, "restarting": False, "token": token,
    }
    if not by_policy:       # as Docker: a start by hand gives on-failure:N its N tries again
        rec["state"]["restart_count"] = 0
    _save(engine, rec)


def _clear_previous_run(runtime, cid: str, paths) -> None:
    """runc state and monitor an earlier run left (a start killed half-way, a crash): removed,
    and its conmon given time to record that exit, so a late exit file cannot pass for the new
    run's. (Not time to exit: its exit command may be waiting for the lock we hold.)"""
    from reconciler.adapters import runtime as rt
    old_conmon = rt.read_int(paths.conmon_pidfile) or 0
    runtime.delete(cid, force=True)
    if old_conmon and rt.pid_alive(old_conmon):
        try:
            with open(f"/proc/{old_conmon}/cmdline", "rb") as f:
                ours = cid.encode() in f.read()
        except OSError:
            ours = False
        exit_path = rt.exit_file(paths, cid)
        deadline = time.monotonic() + 5.0
        while (ours and rt.pid_alive(old_conmon) and not os.path.exists(exit_path)
               and time.monotonic() < deadline):
            time.sleep(0.01)


def _abort_start(engine, rec: dict, error: BaseException) -> None:
    """A start that failed leaves the container as Docker does: not running, error recorded."""
    from reconciler.adapters import runtime as rt
    from reconciler.core.errors import CommandNotExecutable, CommandNotFound
    code = 127 if isinstance(error, CommandNotFound) else 126 if isinstance(error, CommandNotExecutable) else 128
    message = str(error.message) if isinstance(error, DockerMiniError) else str(error)
    try:
        pid = rec["state"].get("pid") or 0
        if rec["state"].get("status") == "running" and pid:
            rt.signal_pid(pid, 9, rec["state"].get("pid_start"))
            _wait_exit_file(engine, rec, 5.0)
    except Exception:
        pass
    try:
        _release_runtime(engine, rec)
    except Exception:
        pass
    prior = rec["state"].get("started_at")
    rec["state"] = {**rec["state"], "status": "exited" if prior and rec["state"].get("finished_at") else "created",
                    "pid": 0, "exit_code": code, "error": message, "finished_at": rec["state"].get("finished_at")}
    if rec["state"]["status"] == "created":
        rec["state"]["started_at"] = None
    try:
        _save(engine, rec)
    except Exception:
        pass


# ---------------------------------------------------------------------------------------------
# stop, kill, wait


def _wait_exit_file(engine, rec: dict, timeout: float | None) -> int | None:
    from reconciler.adapters import runtime as rt
    exit_path = rt.exit_file(_paths(engine, rec["id"]), rec["id"])
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.002
    while True:
        code = rt.read_int(exit_path)
        if code is not None:
            return code
        seen = observe(engine, rec, grace=0.5)
        if seen["status"] != "running":
            return seen.get("exit_code")
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)


def _signal(engine, rec: dict, sig: int) -> bool:
    from reconciler.adapters import runtime as rt
    st = rec["state"]
    return rt.signal_pid(st.get("pid", 0), sig, st.get("pid_start"))


def stop(engine, name_or_id: str, timeout: int | None = None) -> dict:
    """The stop signal (image StopSignal or SIGTERM), `timeout` seconds (default the container's
    --stop-timeout or 10), then SIGKILL; releases runtime state, network and mount."""
    from reconciler.core.ociconfig import DEFAULT_STOP_TIMEOUT, parse_signal
    with engine.mutation():
        rec = reap(engine, resolve(engine, name_or_id))
        running = observe(engine, rec)["status"] == "running"
        if rec["state"].get("status") in ("running", "exited"):
            rec["state"]["manually_stopped"] = True     # also holds back a pending policy restart
            _save(engine, rec)
        if not running:
            return rec
    if timeout is None:
        timeout = rec["options"].get("stop_timeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
    sig = parse_signal(rec["config"].get("StopSignal") or "SIGTERM")
    if timeout != 0:
        _signal(engine, rec, sig)
        code = _wait_exit_file(engine, rec, None if timeout < 0 else float(timeout))
    else:
        code = None
    if code is None:
        _signal(engine, rec, 9)
        if _wait_exit_file(engine, rec, KILL_WAIT) is None:
            raise ContainerRuntimeError(f"container {rec['name']} did not exit after SIGKILL")
    with engine.mutation():
        rec = reap(engine, _load(engine, rec["id"]) or rec)
        _removed_if_orphaned(engine, rec)
        return rec


def kill(engine, name_or_id: str, signal: str = "KILL") -> None:
    from reconciler.core.ociconfig import parse_signal
    sig = parse_signal(signal)
    with engine.mutation():
        rec = resolve(engine, name_or_id)
        if observe(engine, rec)["status"] != "running":
            raise ContainerNotRunning(f"Cannot kill container: {name_or_id}: Container {rec['id']} is not running")
        # as Docker: a kill that ends the container (SIGKILL, its stop signal, or any signal when
        # it configures none) is not undone by the restart policy; `kill -s HUP nginx` reloads
        configured = rec["config"].get("StopSignal")
        if sig == 9 or not configured or sig == parse_signal(configured):
            rec["state"]["manually_stopped"] = True
            _save(engine, rec)
    if not _signal(engine, rec, sig):
        raise ContainerNotRunning(f"Cannot kill container: {name_or_id}: Container {rec['id']} is not running")


def restart(engine, name_or_id: str, timeout: int | None = None) -> dict:
    with engine.mutation():
        rec = resolve(engine, name_or_id)
        if rec["state"].get("status") == "running":
            rec["state"]["restarting"] = True      # the exit it causes is no --rm removal
            _save(engine, rec)
    stop(engine, rec["id"], timeout)
    return start(engine, rec["id"])


def wait(engine, name_or_id: str) -> int:
    """Block until the container is not running; its exit code."""
    rec = resolve(engine, name_or_id)
    code = None
    if observe(engine, rec)["status"] == "running":
        code = _wait_exit_file(engine, rec, None)
    with engine.mutation():
        current = _load(engine, rec["id"])
        if current is None:             # removed meanwhile (--rm): the code we saw is the answer
            return int(code if code is not None else observe(engine, rec).get("exit_code") or 0)
        rec = reap(engine, current)
    return int(observe(engine, rec).get("exit_code") or 0)


# ---------------------------------------------------------------------------------------------
# remove


def remove(engine, name_or_id: str, force: bool = False) -> None:
    """Remove a container and everything it owns: runc state, mount, rw layer, network lease,
    bundle, logs. A running one is refused unless force (then killed first)."""
    killed = None
    with engine.mutation():
        rec = resolve(engine, name_or_id)
        rec = reap(engine, rec, save=False)          # saved below, as "removing"
        st = observe(engine, rec)
        if st["status"] == "running":
            if not force:
                raise ConflictError(f"You cannot remove a running container {rec['id']}. Stop the "
                                    f"container before attempting removal or force remove")
            _signal(engine, rec, 9)
            if _wait_exit_file(engine, rec, KILL_WAIT) is None:
                raise ContainerRuntimeError(f"container {rec['name']} did not exit after SIGKILL")
            killed = dict(rec)
            rec = reap(engine, rec)
        elif st["status"] == "creating":
            raise ConflictError(f"container {rec['name']} is still being created")
        rec["state"]["status"] = "removing"
        try:
            _save(engine, rec)
        except FileNotFoundError:
            pass
        _destroy(engine, rec)
    if killed is not None:
        # conmon lives on until its exit command (which needs the lock we just released) is done
        _wait_conmon_gone(killed)


def _removed_if_orphaned(engine, rec: dict) -> bool:
    """Under the lock: an ended --rm container whose foreground CLI (its monitor, which removes
    it) was killed is removed now, as Docker's daemon would have at its end. True if it was."""
    from reconciler.adapters import runtime as rt
    st = rec.get("state") or {}
    if not ((rec.get("options") or {}).get("auto_remove") and st.get("monitor") == "cli"
            and st.get("status") in ("running", "exited") and not st.get("restarting")
            and not rt.pid_alive(st.get("conmon_pid") or 0)):
        return False
    if st.get("status") == "running" and observe(engine, rec)["status"] == "running":
        return False                                # it runs on: removed once it has ended
    try:
        remove(engine, rec["id"], force=True)
    except DockerMiniError:
        return False        # not this command's business to fail for: `rm` will say why
    return True


def _wait_conmon_gone(rec: dict, timeout: float = 5.0) -> None:
    from reconciler.adapters import runtime as rt
    pid = (rec.get("state") or {}).get("conmon_pid") or 0
    deadline = time.monotonic() + timeout
    while pid and rt.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.005)


def _destroy(engine, rec: dict) -> None:
    from reconciler.adapters import overlay
    cid = rec["id"]
    errors = []
    for step in (lambda: engine.runtime.delete(cid, force=True),
                 lambda: _remove_leftover_cgroup(cid),
                 lambda: _network_teardown(engine, rec),
                 lambda: _network_release(engine, rec),
                 lambda: overlay.remove_rw_layer(engine.layout, cid)):
        try:
            step()
        except DockerMiniError as e:
            errors.append(e)
    sock_dir = _socket_dir(engine)
    link = f"{sock_dir}/{cid[:12]}"
    try:
        if os.path.islink(link):
            os.unlink(link)
    except OSError:
        pass
    if not sock_dir.startswith(engine.layout.root + "/"):
        try:
            os.rmdir(sock_dir)                 # /run/docker-mini/<hash>, once no container uses it
        except OSError:
            pass
    if errors:
        raise errors[0]
    cdir = engine.layout.container_dir(cid)
    containers_dir = engine.layout.containers_dir
    # rename first, so a crash mid-delete never leaves a half-removed record under its id
    trash = f"{containers_dir}/.rm-{cid}"
    try:
        os.rename(cdir, trash)
    except FileNotFoundError:
        pass
    # overlay's remove_tree, not shutil.rmtree: importing shutil costs ~2 ms of every `run --rm`
    try:
        stale = [f"{containers_dir}/{n}" for n in os.listdir(containers_dir) if n.startswith(".rm-")]
    except FileNotFoundError:
        stale = []
    for path in stale:                      # this one, and what a killed rm left
        try:
            overlay.remove_tree(path)
        except OSError:
            pass


def _remove_leftover_cgroup(cid: str) -> None:
    from reconciler.adapters import cgroups
    from reconciler.core.ociconfig import cgroups_path
    if not cgroups.remove_leftover(cgroups_path(cid)):
        raise StorageError(f"the cgroup of container {cid[:12]} cannot be removed: it still has "
                           f"processes", hint="see /sys/fs/cgroup/*/docker-mini/" + cid)


def _network_release(engine, rec: dict) -> None:
    from reconciler.engine import network
    network.release(engine, rec)


# ---------------------------------------------------------------------------------------------
# cleanup after exit (run by conmon's exit command)


FOREGROUND_LOCK = "foreground.lock"


class foreground:
    """Held (`with foreground(engine, cid):`) by a CLI that runs a --rm container in the
    foreground: while it is attached, it removes the container itself once it has its exit
    code; if it detaches (or dies), the exit command removes the container when it ends, as
    Docker's daemon would."""

    def __init__(self, engine, container_id: str):
        self.path = f"{engine.layout.container_dir(container_id)}/{FOREGROUND_LOCK}"

    def __enter__(self) -> None:
        import fcntl
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def foreground_attached(engine, container_id: str) -> bool:
    import fcntl
    try:
        fd = os.open(f"{engine.layout.container_dir(container_id)}/{FOREGROUND_LOCK}", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def cleanup(engine, container_id: str, token: str | None = None) -> None:
    """The container's process ended: reap it, then --rm or the restart policy."""
    if not os.path.isdir(engine.layout.container_dir(container_id)):
        return                     # removed meanwhile (and maybe its whole root: do not recreate it)
    with engine.mutation():
        rec = _load(engine, container_id)
        if rec is None:
            return
        st = rec.get("state") or {}
        if token is not None and st.get("token") != token:
            return                                  # a later run already replaced this one
        rec = reap(engine, rec)
        st = rec["state"]
        if st.get("status") != "exited":
            return
        opts = rec.get("options") or {}
        if st.get("restarting"):
            return                                  # restart() starts it again itself
        if opts.get("auto_remove"):
            if not foreground_attached(engine, container_id):
                remove(engine, container_id, force=True)
            return
        policy, max_retries = _parse_restart(opts.get("restart"))
        if st.get("manually_stopped") or policy == "no":
            return
        if policy == "on-failure" and (st.get("exit_code") == 0 or
                                       (max_retries and st.get("restart_count", 0) >= max_retries)):
            return
        rec["state"]["restart_count"] = st.get("restart_count", 0) + 1
        _save(engine, rec)
    time.sleep(min(0.1 * (2 ** min(rec["state"]["restart_count"], 6)), 5.0))
    try:
        with engine.mutation():
            current = _load(engine, container_id)
            cst = (current or {}).get("state") or {}
            if current and cst.get("token") == rec["state"].get("token") and not cst.get("manually_stopped"):
                start(engine, container_id, by_policy=True)
    except DockerMiniError:
        pass


# ---------------------------------------------------------------------------------------------
# list, inspect, update


def _command_of(rec: dict) -> str:
    words = [rec.get("path", ""), *rec.get("args", [])]
    if all(a and " " not in a for a in words):
        return " ".join(words)            # the common case: no shlex to load for `ps`
    import shlex
    return " ".join(shlex.quote(a) if (" " in a or not a) else a for a in words)


def list_containers(engine, all: bool = True) -> list[ContainerState]:
    out = []
    for rec in all_records(engine):
        st = observe(engine, rec, grace=0.05)
        if st.get("status") == "creating":
            continue                              # not a container yet
        if not all and st.get("status") != "running":
            continue
        out.append(ContainerState(
            id=rec["id"], name=rec.get("name", ""), image=rec.get("image", ""),
            image_id=rec.get("image_id", ""), command=_command_of(rec), created=rec.get("created", ""),
            status=st.get("status", "dead"), exit_code=st.get("exit_code"),
            started_at=st.get("started_at"), finished_at=st.get("finished_at"), pid=st.get("pid", 0),
            labels=rec.get("labels") or {}, ports=(rec.get("network") or {}).get("ports", []),
            record=rec))
    out.sort(key=lambda c: c.created, reverse=True)
    return out


_ZERO_TIME = "0001-01-01T00:00:00Z"


def inspect_container(engine, name_or_id: str) -> dict:
    from reconciler.core.limits import Resources, to_docker_hostconfig
    rec = resolve(engine, name_or_id)
    st = observe(engine, rec)
    opts = rec.get("options") or {}
    cfg = rec.get("config") or {}
    status = st.get("status", "dead")
    res = Resources.from_dict(opts.get("resources")) if opts.get("resources") else Resources()
    restart_name, restart_max = _parse_restart(opts.get("restart"))
    binds = list(opts.get("volumes") or [])
    mounts = []
    for spec in binds:
        parts = spec.split(":")
        ro = len(parts) > 2 and "ro" in parts[2].split(",")
        mounts.append({"Type": "bind", "Source": parts[0], "Destination": parts[1], "Mode": parts[2] if len(parts) > 2 else "",
                       "RW": not ro, "Propagation": "rprivate"})
    for spec in opts.get("tmpfs") or []:
        mounts.append({"Type": "tmpfs", "Source": "", "Destination": spec.split(":")[0], "Mode": "",
                       "RW": True, "Propagation": ""})
    ports: dict = {}
    for p in (rec.get("network") or {}).get("ports", []) or []:
        if isinstance(p, dict):
            key = f"{p.get('container_port')}/{p.get('proto', 'tcp')}"
            ports.setdefault(key, []).append({"HostIp": p.get("host_ip") or "", "HostPort": str(p.get("host_port", ""))})
    data = {
        "Id": rec["id"],
        "Created": rec.get("created"),
        "Path": rec.get("path"),
        "Args": rec.get("args", []),
        "State": {
            "Status": status,
            "Running": status == "running",
            "Paused": False,
            "Restarting": False,
            "OOMKilled": bool(st.get("oom_killed")),
            "Dead": status == "dead",
            "Pid": st.get("pid", 0) if status == "running" else 0,
            "ExitCode": st.get("exit_code") or 0,
            "Error": st.get("error") or "",
            "StartedAt": st.get("started_at") or _ZERO_TIME,
            "FinishedAt": st.get("finished_at") or _ZERO_TIME,
        },
        "Image": rec.get("image_id"),
        "ResolvConfPath": f"{engine.layout.container_dir(rec['id'])}/resolv.conf",
        "HostnamePath": f"{engine.layout.container_dir(rec['id'])}/hostname",
        "HostsPath": f"{engine.layout.container_dir(rec['id'])}/hosts",
        "LogPath": str(_paths(engine, rec["id"]).log),
        "Name": "/" + rec.get("name", ""),
        "RestartCount": (rec.get("state") or {}).get("restart_count", 0),
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            **to_docker_hostconfig(res),
            "ReadonlyRootfs": bool(opts.get("read_only")),
            "CapAdd": opts.get("cap_add") or None,
            "CapDrop": opts.get("cap_drop") or None,
            "SecurityOpt": opts.get("security_opt") or None,
            "Ulimits": opts.get("ulimits") or None,
            "Binds": binds or None,
            "Tmpfs": {s.split(":")[0]: s.partition(":")[2] for s in opts.get("tmpfs") or []} or None,
            "NetworkMode": opts.get("network") or "bridge",
            "PortBindings": ports,
            "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": restart_max},
            "StorageOpt": {"size": str(opts["storage_size"])} if opts.get("storage_size") else None,
            "AutoRemove": bool(opts.get("auto_remove")),
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": cfg.get("Hostname"),
            "User": cfg.get("User") or "",
            "Env": cfg.get("Env") or [],
            "Cmd": cfg.get("Cmd") or None,
            "Entrypoint": cfg.get("Entrypoint") or None,
            "Image": rec.get("image"),
            "WorkingDir": "" if cfg.get("WorkingDir") == "/" else cfg.get("WorkingDir"),
            "Labels": rec.get("labels") or {},
            "StopSignal": cfg.get("StopSignal"),
            "StopTimeout": opts.get("stop_timeout"),
            "Tty": bool(opts.get("tty")),
            "OpenStdin": bool(opts.get("interactive")),
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        },
        "NetworkSettings": _network_settings(engine, rec),
    }
    return data


def _network_settings(engine, rec: dict) -> dict:
    from reconciler.engine import network
    try:
        return network.network_settings(engine, rec)
    except DockerMiniError:
        return {}


def update_resources(engine, name_or_id: str, resources) -> None:
    """New limits for a container, applied in place (runc update) when it runs, and recorded."""
    from reconciler.core.limits import to_oci_resources
    with engine.mutation():
        rec = reap(engine, resolve(engine, name_or_id))
        if observe(engine, rec)["status"] == "running":
            from reconciler.adapters import cgroups
            engine.runtime.update(rec["id"], to_oci_resources(resources, cgroups.swap_accounting()))
        rec["options"]["resources"] = resources.to_dict()
        _save(engine, rec)


# ---------------------------------------------------------------------------------------------
# logs


class LogLine(Record):
    __slots__ = ("stream", "timestamp", "data")

    def __init__(self, stream: str, timestamp: str, data: bytes):
        self.stream = stream        # "stdout" | "stderr"
        self.timestamp = timestamp  # RFC 3339 with nanoseconds, as conmon wrote it
        self.data = data            # the line, with its newline when it had one


def _parse_log_line(raw: bytes, pending: dict) -> LogLine | None:
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0].decode(errors="replace"), parts[1].decode(errors="replace"), parts[2]
    content = parts[3] if len(parts) > 3 else b""
    if tag == b"P":
        pending[stream] = pending.get(stream, b"") + content
        return None
    data = pending.pop(stream, b"") + content + b"\n"
    return LogLine(stream, ts, data)


def _read_lines(f, pending: dict, emit: Callable[[LogLine], Any]) -> int:
    """Parse the complete lines from f's position; returns the bytes consumed."""
    used = 0
    for raw in f:
        if not raw.endswith(b"\n"):
            break
        used += len(raw)
        item = _parse_log_line(raw, pending)
        if item is not None:
            emit(item)
    return used


def read_logs(engine, name_or_id: str, *, tail: int | None = None, follow: bool = False,
              since: str | None = None) -> Iterator[LogLine]:
    """The container's output from its k8s-file log; follow keeps reading until it exits."""
    rec = resolve(engine, name_or_id)
    log = _paths(engine, rec["id"]).log
    pending: dict = {}
    lines: list[LogLine] = []
    pos, ino = 0, None
    try:
        with open(log, "rb") as f:
            ino = os.fstat(f.fileno()).st_ino
            pos = _read_lines(f, pending, lines.append)
    except FileNotFoundError:
        pass
    if tail is not None and tail >= 0:
        lines = lines[len(lines) - tail:] if tail else []
    yield from lines
    if not follow:
        return
    while True:
        running = observe(engine, rec, grace=0.05)["status"] == "running"
        try:
            with open(log, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_ino != ino or st.st_size < pos:    # conmon rotated the file
                    ino, pos, pending = st.st_ino, 0, {}
                f.seek(pos)
                fresh: list[LogLine] = []
                pos += _read_lines(f, pending, fresh.append)
            yield from fresh
        except FileNotFoundError:
            if _load(engine, rec["id"]) is None:
                return
        if not running:
            return
        time.sleep(0.1)
