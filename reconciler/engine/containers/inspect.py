"""`inspect` of a container: its record and observed state in Docker's JSON shape."""

from __future__ import annotations

import logging

from reconciler.core.errors import DockerMiniError
from reconciler.core.limits import Resources, to_docker_hostconfig
from reconciler.core.restart import RestartPolicy
from reconciler.engine import network
from reconciler.engine.containers.liveness import current_state
from reconciler.engine.containers.store import monitor_paths, resolve

log = logging.getLogger(__name__)

_ZERO_TIME = "0001-01-01T00:00:00Z"


def inspect_container(engine, name_or_id: str) -> dict:
    rec = resolve(engine, name_or_id)
    st = current_state(engine, rec)
    opts = rec.get("options") or {}
    cfg = rec.get("config") or {}
    status = st.get("status", "dead")
    res = Resources.from_dict(opts.get("resources")) if opts.get("resources") else Resources()
    policy = RestartPolicy.parse(opts.get("restart"))
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
        "LogPath": str(monitor_paths(engine, rec["id"]).log),
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
            "RestartPolicy": {"Name": policy.name, "MaximumRetryCount": policy.max_retries},
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
    try:
        return network.network_settings(engine, rec)
    except DockerMiniError as e:
        log.debug("no network settings for %s: %s", rec["id"][:12], e)
        return {}
