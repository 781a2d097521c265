"""Creating a container: its record, network lease, rw layer and /etc files.

A record stays "creating" until create has finished everything else: a create killed half-way
shows in `ps -a` as Dead (never as a usable container) and `rm` removes what it left.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from reconciler.core import hostsfile, portmapping, resolvconf
from reconciler.core import ociprocess
from reconciler.core.errors import ImageNotFound
from reconciler.engine import images, network, volumes
from reconciler.engine.containers import names
from reconciler.engine.containers.options import CreateOptions, generate_name, normalize
from reconciler.engine.containers.records import ContainerRecord, NetworkEndpoint, ProcessConfig, RunState
from reconciler.engine.containers.removal import destroy, removed_if_orphaned
from reconciler.engine.containers.store import container_dir, monitor_paths, now_iso, save, write_file

log = logging.getLogger(__name__)


def create(engine, opts: CreateOptions) -> ContainerRecord:
    """Create a container; returns its record (container.json's content)."""
    opts = normalize(opts)
    try:
        image = engine.images.resolve(opts.image)
    except ImageNotFound:
        image = images.ensure_image(engine, opts.image)
    image_config = engine.images.config(image)
    if not isinstance(image_config, dict):
        image_config = {}
    lowerdirs = engine.layers.lowerdirs(image.layer) if image.layer else []
    cid = os.urandom(32).hex()
    if opts.publish_all:
        cfg = image_config.get("config") or image_config.get("Config") or {}
        opts.ports = portmapping.with_exposed(opts.ports, cfg.get("ExposedPorts"))
    process = ociprocess.process_spec(image_config, container_id=cid, command=opts.command,
                              entrypoint=opts.entrypoint, env=opts.env, workdir=opts.workdir,
                              user=opts.user, hostname=opts.hostname, stop_signal=opts.stop_signal,
                              tty=opts.tty)
    with engine.mutation():
        if opts.name is None:
            opts.name = generate_name(names.taken(engine))
        else:
            other = names.holder(engine, opts.name)
            if other is not None:
                # an ended --rm container whose foreground CLI was killed gives its name up
                removed_if_orphaned(engine, other)
        me = os.getpid()
        cfg = image_config.get("config") or {}
        rec = ContainerRecord(
            id=cid, name=opts.name, image=opts.image, image_id=image.id, image_digest=image.digest,
            image_layer=image.layer, lowerdirs=lowerdirs, created=now_iso(),
            labels={**(cfg.get("Labels") or {}), **opts.labels}, options=opts,
            path=process.args[0], args=process.args[1:],
            config=ProcessConfig(hostname=process.hostname, user=process.user, env=process.env,
                                 cmd=process.cmd, entrypoint=process.entrypoint or None,
                                 working_dir=process.cwd, stop_signal=process.stop_signal,
                                 tty=opts.tty, open_stdin=opts.interactive),
            state=RunState(status="creating", creator=[me, engine.processes.process_start_time(me)]))
        names.claim(engine, opts.name, cid)           # before the record: see names
        try:
            container_dir(engine, cid).mkdir(mode=0o700, parents=True)
            rec.log_inode = _create_log(monitor_paths(engine, cid).log)
        except BaseException:
            names.release(engine, opts.name, cid)
            raise
        try:
            save(engine, rec)
            # the image was resolved before the lock: an rmi may have won the race since then
            # (from now on it sees this record and refuses)
            missing = [d for d in lowerdirs if not (engine.layout.overlay_dir / d).is_dir()]
            if missing:
                raise ImageNotFound(f"image {opts.image} was removed while the container was being created")
            rec.network = NetworkEndpoint.from_json(network.prepare(engine, cid, opts))
            engine.overlay.create_rw_layer(engine.layout, cid, opts.storage_size)
            volumes.ensure_for_container(engine, opts.volumes, rec.labels)   # named ones (kept by rm)
            _write_etc_files(engine, rec, process.hostname)
            rec.state = RunState(status="created")
            # an --rm container is gone once its process ends, which a power cut ends too:
            # its record need not outlive one (two fsyncs saved per `run --rm`)
            save(engine, rec, durable=not opts.auto_remove)
        except BaseException:
            try:
                destroy(engine, rec)
            except Exception as e:
                log.debug("clean-up of the failed create of %s: %s", cid[:12], e)
            raise
    return rec


def _write_etc_files(engine, rec: ContainerRecord, hostname: str) -> None:
    cdir = container_dir(engine, rec.id)
    write_file(cdir / "hostname", f"{hostname}\n".encode(), 0o644)
    write_file(cdir / "hosts", hostsfile.render_hosts(None, (), hostname=hostname).encode(), 0o644)
    try:
        host_resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        host_resolv = ""
    write_file(cdir / "resolv.conf", resolvconf.render_resolv_conf(host_resolv).encode(), 0o644)


def _create_log(path: str | os.PathLike) -> int:
    """The empty log, made now so that its inode tells `logs` whether the writer (conmon, or
    a foreground run) has started it over since (see logs)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)
