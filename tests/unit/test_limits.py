"""Docker's validation of the limit flags and their translation for runc and for inspect."""

from __future__ import annotations

import pytest

from reconciler.core.errors import InvalidArgument
from reconciler.core.limits import (Resources, parse_cpu_list, parse_resources, to_docker_hostconfig,
                                    to_oci_resources)

MiB = 1 << 20
HOST = {"host_cpus": 2, "host_cpuset": "0-1"}

VALID = [
    # (flags, expected Resources)
    ({}, Resources()),
    ({"memory": "64m"}, Resources(memory=64 * MiB, memory_swap=128 * MiB)),
    ({"memory": "64M", "memory_swap": "64m"}, Resources(memory=64 * MiB, memory_swap=64 * MiB)),
    ({"memory": "1g", "memory_swap": "-1"}, Resources(memory=1 << 30, memory_swap=-1)),
    ({"memory": "6m"}, Resources(memory=6 * MiB, memory_swap=12 * MiB)),
    ({"memory": 6291456}, Resources(memory=6 * MiB, memory_swap=12 * MiB)),
    ({"memory": "64m", "memory_reservation": "32m"},
     Resources(memory=64 * MiB, memory_swap=128 * MiB, memory_reservation=32 * MiB)),
    ({"cpus": "0.5"}, Resources(nano_cpus=500_000_000)),
    ({"cpus": 1.5}, Resources(nano_cpus=1_500_000_000)),
    ({"cpus": "2"}, Resources(nano_cpus=2_000_000_000)),
    ({"cpus": "0"}, Resources()),
    ({"cpu_period": "50000", "cpu_quota": "25000"}, Resources(cpu_period=50000, cpu_quota=25000)),
    ({"cpu_period": 1000}, Resources(cpu_period=1000)),
    ({"cpu_period": 1000000}, Resources(cpu_period=1000000)),
    ({"cpu_quota": -1}, Resources(cpu_quota=-1)),
    ({"cpuset_cpus": "0-1"}, Resources(cpuset_cpus="0-1")),
    ({"cpuset_cpus": "1"}, Resources(cpuset_cpus="1")),
    ({"cpuset_cpus": "0,1"}, Resources(cpuset_cpus="0,1")),
    ({"pids_limit": "100"}, Resources(pids_limit=100)),
    ({"pids_limit": 0}, Resources()),
    ({"pids_limit": -1}, Resources()),
]

INVALID = [
    # (flags, Docker's message, or the start of it)
    ({"memory": "5m"}, "Minimum memory limit allowed is 6MB"),
    ({"memory": "6"}, "Minimum memory limit allowed is 6MB"),
    ({"memory": "lots"}, "-m, --memory"),
    ({"memory": "-64m"}, "-m, --memory"),
    ({"memory": "64m", "memory_swap": "32m"},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"memory_swap": "128m"},
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"memory": "64m", "memory_reservation": "128m"},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"memory_reservation": "1m"}, "Minimum memory reservation allowed is 6MB"),
    ({"cpus": "3"}, "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"cpus": "-1"}, "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"cpus": "half"}, 'invalid argument "half" for "--cpus" flag'),
    ({"cpus": "0.0000000001"}, "value is too precise"),
    ({"cpus": "1", "cpu_period": "50000"},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"cpus": "1", "cpu_quota": "50000"},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"cpu_period": 999}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                          "(i.e. 1000000)"),
    ({"cpu_period": 1000001}, "CPU cfs period can not be less than 1ms"),
    ({"cpu_quota": 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"cpu_quota": "many"}, 'invalid argument "many" for "--cpu-quota" flag'),
    ({"cpuset_cpus": "0-a"}, "Invalid value 0-a for cpuset cpus: invalid format: 0-a"),
    ({"cpuset_cpus": "1-0"}, "Invalid value 1-0 for cpuset cpus"),
    ({"cpuset_cpus": "0,"}, "Invalid value 0, for cpuset cpus"),
    ({"cpuset_cpus": "²"}, "Invalid value ² for cpuset cpus: invalid format"),
    ({"cpuset_cpus": "0-99999999999"}, "Invalid value 0-99999999999 for cpuset cpus: CPU 99999999999 "
                                       "is beyond the kernel's limit of 8192 CPUs"),   # not a huge set
    ({"cpuset_cpus": "0-3"}, "Requested CPUs are not available - requested 0-3, available: 0-1"),
    ({"cpuset_cpus": "2"}, "Requested CPUs are not available - requested 2, available: 0-1"),
    ({"pids_limit": "x"}, 'invalid argument "x" for "--pids-limit" flag'),
]


@pytest.mark.parametrize("flags,expected", VALID, ids=[repr(c[0]) for c in VALID])
def test_valid_flags(flags, expected):
    assert parse_resources(**flags, **HOST) == expected


@pytest.mark.parametrize("flags,message", INVALID, ids=[repr(c[0]) for c in INVALID])
def test_invalid_flags_give_dockers_message(flags, message):
    with pytest.raises(InvalidArgument) as err:
        parse_resources(**flags, **HOST)
    assert message in str(err.value)


def test_update_allows_swap_alone_and_keeps_it_unexpanded():
    assert parse_resources(memory_swap="256m", update=True, **HOST) == Resources(memory_swap=256 << 20)
    assert parse_resources(memory="64m", update=True, **HOST).memory_swap == 0


def test_host_cpuset_defaults_to_all_host_cpus():
    assert parse_resources(cpuset_cpus="3", host_cpus=4).cpuset_cpus == "3"
    with pytest.raises(InvalidArgument, match="available: 0-3"):
        parse_resources(cpuset_cpus="4", host_cpus=4)
    with pytest.raises(InvalidArgument, match="available: 0$"):
        parse_resources(cpuset_cpus="1", host_cpus=1)


def test_host_cpuset_restricts_even_within_the_count():
    with pytest.raises(InvalidArgument, match="available: 0,2"):
        parse_resources(cpuset_cpus="1", host_cpus=3, host_cpuset="0,2\n")


@pytest.mark.parametrize("text,cpus", [("", set()), ("0", {0}), ("0-2,5", {0, 1, 2, 5}),
                                       ("3,1", {1, 3}), ("1-1", {1})])
def test_cpu_list(text, cpus):
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("text", [" 0", "a", "0-", "-1", "0--1", "2-1", ",", "0,,1"])
def test_cpu_list_rejects(text):
    with pytest.raises(ValueError):
        parse_cpu_list(text)


OCI = [
    (Resources(), {}),
    (Resources(memory=64 * MiB, memory_swap=128 * MiB),
     {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}}),
    (Resources(memory=64 * MiB, memory_swap=-1), {"memory": {"limit": 64 * MiB, "swap": -1}}),
    (Resources(memory=64 * MiB, memory_swap=128 * MiB, memory_reservation=32 * MiB),
     {"memory": {"limit": 64 * MiB, "swap": 128 * MiB, "reservation": 32 * MiB}}),
    (Resources(nano_cpus=500_000_000), {"cpu": {"quota": 50000, "period": 100000}}),
    (Resources(nano_cpus=1_500_000_000), {"cpu": {"quota": 150000, "period": 100000}}),
    (Resources(cpu_period=50000, cpu_quota=25000), {"cpu": {"quota": 25000, "period": 50000}}),
    (Resources(cpu_quota=-1), {"cpu": {"quota": -1}}),
    (Resources(cpuset_cpus="0-1"), {"cpu": {"cpus": "0-1"}}),
    (Resources(pids_limit=100), {"pids": {"limit": 100}}),
]


@pytest.mark.parametrize("res,oci", OCI)
def test_oci_resources(res, oci):
    assert to_oci_resources(res) == oci


def test_flags_to_oci_end_to_end():
    res = parse_resources(memory="128m", cpus="0.25", cpuset_cpus="1", pids_limit=50, **HOST)
    assert to_oci_resources(res) == {
        "memory": {"limit": 128 * MiB, "swap": 256 * MiB},
        "cpu": {"quota": 25000, "period": 100000, "cpus": "1"},
        "pids": {"limit": 50},
    }


def test_docker_hostconfig_shape():
    res = parse_resources(memory="64m", cpus="1.5", pids_limit=10, cpuset_cpus="0", **HOST)
    assert to_docker_hostconfig(res) == {
        "Memory": 64 * MiB, "MemorySwap": 128 * MiB, "MemoryReservation": 0,
        "NanoCpus": 1_500_000_000, "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "0",
        "PidsLimit": 10,
    }
    assert to_docker_hostconfig(Resources())["PidsLimit"] is None


def test_dict_round_trip_ignores_unknown_keys():
    res = parse_resources(memory="64m", cpus="1", pids_limit=7, **HOST)
    assert Resources.from_dict({**res.to_dict(), "future_field": 1}) == res
    assert Resources.from_dict(None) == Resources()


def test_swap_is_left_out_without_swap_accounting():
    res = parse_resources(memory="64m", **HOST)
    assert to_oci_resources(res, swap_accounting=False) == {"memory": {"limit": 64 * MiB}}
