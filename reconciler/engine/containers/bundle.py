"""The OCI bundle of a container: config.json built from its record and its mounted rootfs.

Files of the container's own image (its /etc/passwd, its working directory) are read and made
from the host without ever following a symlink the container's root could have planted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import stat
from pathlib import Path
from typing import Callable

from reconciler.core import ociconfig
from reconciler.core import ocimounts
from reconciler.core import ociprocess
from reconciler.core import ociusers
from reconciler.engine.containers.records import ContainerRecord
from reconciler.engine import volumes
from reconciler.engine.containers.store import container_dir, write_file


def host_rlimits() -> dict[str, int]:
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
    rootfs = os.fspath(rootfs)
    parts = [p for p in ocimounts.resolve_in_rootfs(path, _rootfs_reader(rootfs)).split("/") if p]
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
    never through a symlink. (Paths inside the rootfs are joined as strings: they are absolute,
    and Path's / would make them the host's.)"""
    cur = ""
    for comp in [c for c in path.split("/") if c]:
        cur = ocimounts.resolve_in_rootfs(cur + "/" + comp, _rootfs_reader(rootfs))
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


def build_bundle(engine, rec: ContainerRecord, rootfs: str | os.PathLike, netns: str | None) -> None:
    """config.json in the container's directory, for runc."""
    rootfs = os.fspath(rootfs)
    opts, cfg = rec.options, rec.config
    process = ociprocess.ProcessSpec(args=rec.command, env=list(cfg.env), cwd=cfg.working_dir,
                             user=cfg.user or "", hostname=cfg.hostname,
                             stop_signal=cfg.stop_signal or "SIGTERM")
    exec_user = ociusers.resolve_user(process.user, read_in_rootfs(rootfs, "/etc/passwd"),
                                read_in_rootfs(rootfs, "/etc/group"))
    readlink = _rootfs_reader(rootfs)
    plan = ocimounts.MountPlan()
    for spec in opts.volumes:
        vol = ocimounts.parse_volume(spec)
        dest = ocimounts.resolve_in_rootfs(vol.destination, readlink)
        if vol.name is not None:            # its _data, filled from the image on first use
            vol = dataclasses.replace(vol, source=volumes.mount_source(engine, vol.name, rootfs, dest))
        elif not Path(vol.source).exists():
            Path(vol.source).mkdir(mode=0o755, parents=True, exist_ok=True)   # as Docker does
        plan.volumes.append((vol, dest))
    for spec in opts.tmpfs:
        t = ocimounts.parse_tmpfs(spec)
        plan.tmpfs.append((t, ocimounts.resolve_in_rootfs(t.destination, readlink)))
    cdir = container_dir(engine, rec.id)
    for name in ("hostname", "hosts", "resolv.conf"):
        if (cdir / name).exists():
            plan.etc_files[ocimounts.resolve_in_rootfs("/etc/" + name, readlink)] = str(cdir / name)
    cwd = ocimounts.resolve_in_rootfs(process.cwd, readlink)
    _mkdir_in_rootfs(rootfs, cwd)
    cgroups = engine.cgroups
    res = None
    if opts.resources is not None:
        from reconciler.core.limits import to_oci_resources
        res = to_oci_resources(opts.resources, swap_accounting=cgroups.swap_accounting())
    config = ociconfig.build_config(
        container_id=rec.id, process=process, exec_user=exec_user, rootfs=str(rootfs),
        read_only=opts.read_only, tty=opts.tty, cap_add=opts.cap_add, cap_drop=opts.cap_drop,
        security_opt=opts.security_opt, ulimits=opts.ulimits, host_rlimits=host_rlimits(),
        resources=res, network="host" if opts.network == "host" else "new", netns_path=None if netns is None else str(netns),
        mounts=plan, cgroup_v2=cgroups.cgroup_version() == 2, arch=os.uname().machine)
    write_file(cdir / "config.json", json.dumps(config).encode())
