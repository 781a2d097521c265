"""container.json: records written by earlier versions load, and what this version writes
carries a format version and loses nothing it does not know."""

import json

import pytest

from reconciler.core.limits import Resources
from reconciler.engine.containers.records import FORMAT, ContainerRecord

# as the engine wrote it before the typed record (no "format", no "log_inode")
OLD = {
    "id": "a" * 64,
    "name": "web",
    "image": "busybox",
    "image_id": "sha256:" + "b" * 64,
    "image_digest": None,
    "image_layer": "c" * 64,
    "lowerdirs": ["l/ABC"],
    "created": "2026-11-28T09:00:00.123456789Z",
    "labels": {"k": "v"},
    "options": {"image": "busybox", "name": "web", "command": None, "entrypoint": None, "env": ["A=1"],
                "workdir": None, "user": None, "hostname": None, "read_only": False, "cap_add": [],
                "cap_drop": [], "security_opt": [], "ulimits": [],
                "resources": {"memory": 4194304, "memory_swap": 0, "memory_reservation": 0,
                              "nano_cpus": 0, "cpu_period": 0, "cpu_quota": 0, "cpuset_cpus": "",
                              "pids_limit": None},
                "storage_size": None, "volumes": [], "tmpfs": [], "network": "bridge", "ip": None,
                "mac": None, "ports": ["8080:80"], "labels": {}, "restart": "on-failure:3",
                "stop_signal": None, "stop_timeout": None, "tty": False, "interactive": False,
                "auto_remove": False},
    "path": "/bin/sh", "args": ["-c", "sleep 1"],
    "config": {"Hostname": "aaaaaaaaaaaa", "User": "", "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"],
               "Entrypoint": None, "WorkingDir": "/", "StopSignal": "SIGTERM", "Tty": False,
               "OpenStdin": False},
    "network": {"id": "a" * 64, "mode": "bridge", "name": "web", "hostname": "aaaaaaaaaaaa",
                "aliases": [], "stack": "", "bridge": "dm0", "subnet": "10.88.0.0/16",
                "ip": "10.88.0.2", "prefixlen": 16, "gateway": "10.88.0.1", "mac": "02:42:0a:58:00:02",
                "ports": [{"host_ip": "", "host_port": 8080, "container_port": 80, "proto": "tcp"}]},
    "state": {"status": "exited", "pid": 0, "pid_start": None, "conmon_pid": 4242, "monitor": "conmon",
              "started_at": "2026-11-28T09:00:01Z", "finished_at": "2026-11-28T09:00:02Z",
              "exit_code": 3, "oom_killed": False, "restart_count": 2, "error": "",
              "manually_stopped": False, "restarting": False, "token": "123"},
}


def test_a_record_of_the_old_format_loads_typed():
    rec = ContainerRecord.from_json(json.loads(json.dumps(OLD)))
    assert rec.name == "web" and rec.short_id == "a" * 12
    assert rec.state.status == "exited" and rec.state.exit_code == 3 and rec.state.restart_count == 2
    assert rec.options.resources == Resources(memory=4194304)
    assert rec.options.restart == "on-failure:3" and rec.options.ports == ["8080:80"]
    assert rec.config.working_dir == "/" and rec.config.stop_signal == "SIGTERM"
    assert rec.network.ip == "10.88.0.2" and rec.network.ports[0]["host_port"] == 8080
    assert rec.command == ["/bin/sh", "-c", "sleep 1"]
    assert rec.log_inode is None


def test_saving_an_old_record_keeps_every_field_and_adds_the_format():
    data = ContainerRecord.from_json(OLD).to_json()
    assert data["format"] == FORMAT
    for key, value in OLD.items():
        if key == "state":
            assert {k: data["state"][k] for k in value} == value
        else:
            assert data[key] == value, key


def test_a_round_trip_is_exact():
    data = ContainerRecord.from_json(OLD).to_json()
    assert ContainerRecord.from_json(data).to_json() == data


def test_fields_of_a_newer_format_are_kept_as_they_were():
    newer = {**OLD, "format": FORMAT + 1, "volumes": [{"name": "data"}],
             "network": {**OLD["network"], "ipv6": "fd00::2"}}
    data = ContainerRecord.from_json(newer).to_json()
    assert data["volumes"] == [{"name": "data"}]
    assert data["network"]["ipv6"] == "fd00::2"
    assert data["format"] == FORMAT + 1       # not passed off as this version's


def test_a_minimal_record_loads_with_defaults():
    rec = ContainerRecord.from_json({"id": "d" * 64, "state": {"status": "created"}})
    assert rec.state.status == "created" and rec.state.monitor == "conmon"
    assert rec.options.network == "bridge" and rec.network.to_json() == {}


@pytest.mark.parametrize("data", [None, [], {"name": "no id"}, {"id": 7}])
def test_what_is_no_record_is_refused(data):
    with pytest.raises(ValueError):
        ContainerRecord.from_json(data)
