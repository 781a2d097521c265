"""`inspect` of a container: its record and observed state in Docker's JSON shape."""

from __future__ import annotations

import logging

from reconciler.core.errors import DockerMiniError
from reconciler.core.limits import Resources, to_docker_hostconfig
from reconciler.core.restart import RestartPolicy
from reconciler.engine import network
from reconciler.engine.containers.liveness import current_state
from reconciler.engine.containers.records import ContainerRecord
from reconciler.engine.containers.store import container_dir, monitor_paths, resolve

log = logging.getLogger(__name__)

_ZERO_TIME = "0001-01-01T00:00:00Z"


def inspect_container(engine, name_or_id: str) -> dict:
    """Docker's inspect JSON of the container."""
    rec = resolve(engine, name_or_id)
    st = current_state(engine, rec)
    opts, cfg = rec.options, rec.config
    status = st.status or "dead"
    cdir = container_dir(engine, rec.id)
    policy = RestartPolicy.parse(opts.restart)
    return {
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": status,
            "Running": status == "running",
            "Paused": False,
            "Restarting": False,
            "OOMKilled": st.oom_killed,
            "Dead": status == "dead",
            "Pid": st.pid if status == "running" else 0,
            "ExitCode": st.exit_code or 0,
            "Error": st.error or "",
            "StartedAt": st.started_at or _ZERO_TIME,
            "FinishedAt": st.finished_at or _ZERO_TIME,
            **_health(engine, rec, st),
        },
        "Image": rec.image_id,
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": str(monitor_paths(engine, rec.id).log),
        "Name": "/" + rec.name,
        "RestartCount": rec.state.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            **to_docker_hostconfig(opts.resources or Resources()),
            "ReadonlyRootfs": opts.read_only,
            "CapAdd": opts.cap_add or None,
            "CapDrop": opts.cap_drop or None,
            "SecurityOpt": opts.security_opt or None,
            "Ulimits": opts.ulimits or None,
            "Binds": list(opts.volumes) or None,
            "Tmpfs": {s.split(":")[0]: s.partition(":")[2] for s in opts.tmpfs} or None,
            "NetworkMode": opts.network or "bridge",
            "PortBindings": _port_bindings(rec.network.ports),
            "RestartPolicy": {"Name": policy.name, "MaximumRetryCount": policy.max_retries},
            "StorageOpt": {"size": str(opts.storage_size)} if opts.storage_size else None,
            "AutoRemove": opts.auto_remove,
        },
        "Mounts": _mounts(opts.volumes, opts.tmpfs, engine.root),
        "Config": {
            "Hostname": cfg.hostname,
            "User": cfg.user or "",
            "Env": cfg.env,
            "Cmd": cfg.cmd or None,
            "Entrypoint": cfg.entrypoint or None,
            "Image": rec.image,
            "WorkingDir": "" if cfg.working_dir == "/" else cfg.working_dir,
            "Labels": rec.labels,
            "StopSignal": cfg.stop_signal,
            "StopTimeout": opts.stop_timeout,
            "Tty": opts.tty,
            "OpenStdin": opts.interactive,
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        },
        "NetworkSettings": _network_settings(engine, rec),
    }


def _health(engine, rec: ContainerRecord, st) -> dict:
    """State.Health when the container has a healthcheck and runs (engine.health keeps it)."""
    from reconciler.engine.health.state import read
    found = read(engine, rec, st)
    return {"Health": found.to_docker()} if found is not None else {}


def _mounts(volumes: list[str], tmpfs: list[str], root) -> list[dict]:
    mounts = []
    for spec in volumes:
        parts = spec.split(":")
        ro = len(parts) > 2 and "ro" in parts[2].split(",")
        if not parts[0].startswith("/"):            # a named volume
            mounts.append({"Type": "volume", "Name": parts[0], "Source": f"{root}/volumes/{parts[0]}/_data",
                           "Destination": parts[1], "Driver": "local", "Mode": parts[2] if len(parts) > 2 else "z",
                           "RW": not ro, "Propagation": ""})
            continue
        mounts.append({"Type": "bind", "Source": parts[0], "Destination": parts[1],
                       "Mode": parts[2] if len(parts) > 2 else "", "RW": not ro, "Propagation": "rprivate"})
    for spec in tmpfs:
        mounts.append({"Type": "tmpfs", "Source": "", "Destination": spec.split(":")[0], "Mode": "",
                       "RW": True, "Propagation": ""})
    return mounts


def _port_bindings(published: list[dict]) -> dict:
    ports: dict = {}
    for p in published:
        if isinstance(p, dict):
            key = f"{p.get('container_port')}/{p.get('proto', 'tcp')}"
            ports.setdefault(key, []).append({"HostIp": p.get("host_ip") or "",
                                              "HostPort": str(p.get("host_port", ""))})
    return ports


def _network_settings(engine, rec: ContainerRecord) -> dict:
    try:
        return network.network_settings(engine, rec)
    except DockerMiniError as e:
        log.debug("no network settings for %s: %s", rec.short_id, e)
        return {}
