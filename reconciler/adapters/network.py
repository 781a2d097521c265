"""The kernel side of networking: named network namespaces, the bridge, veth pairs, addresses,
routes (pyroute2 over netlink), sysctls, and our one nftables table (`nft -f`).

Every function is idempotent where it can be: a command killed half-way leaves things a rerun
(or a cleanup) finishes or removes.

pyroute2 is imported by the functions that use it (~120 ms): `inspect` and `rm` reach this
module for a path or a cleanup that needs no netlink.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import ipaddress
import os
import socket
import subprocess
from pathlib import Path

from reconciler.core import nftables
from reconciler.core.errors import NetworkError

NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")


def _pyroute2():
    from pyroute2 import IPRoute  # lazy: `ps` never pays for pyroute2
    from pyroute2.netlink.exceptions import NetlinkError
    return IPRoute, NetlinkError


# ---------------------------------------------------------------------------------------------
# network namespaces


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def netns_exists(name: str) -> bool:
    return netns_path(name).exists()


def list_netns(prefix: str = "") -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:
        return []


# Namespaces are entered by the calling thread itself (setns/unshare affect one thread only)
# rather than through pyroute2's forked helper processes: ~2 ms instead of ~60 ms per step.
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
MNT_DETACH = 2


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _errno_error(what: str) -> NetworkError:
    err = ctypes.get_errno()
    return NetworkError(f"{what}: {os.strerror(err)}")


def _share_run_dir(libc) -> None:
    """/run/netns as a shared mount (as `ip netns` makes it), so namespace mounts propagate
    into mount namespaces created later, such as the containers'."""
    NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    d = os.fsencode(NETNS_DIR)
    if libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None) == 0:
        return
    if libc.mount(d, d, b"none", MS_BIND | MS_REC, None) != 0:
        raise _errno_error(f"cannot bind-mount {NETNS_DIR}")
    if libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None) != 0:
        raise _errno_error(f"cannot make {NETNS_DIR} a shared mount")


@contextlib.contextmanager
def _switched(libc, enter):
    """Run the `with` block with this thread in another network namespace (`enter` puts it
    there), and always come back to the one it was in."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter()
        try:
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                # continuing in the wrong namespace would wire the host wrongly: stop here
                os.write(2, b"docker-mini: fatal: cannot return to the host network namespace\n")
                os._exit(70)
    finally:
        os.close(home)


def create_netns(name: str) -> str:
    """A fresh named netns with loopback up. An existing one of that name is replaced."""
    IPRoute, _ = _pyroute2()
    libc = _libc()
    remove_netns(name)
    _share_run_dir(libc)
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))

    def enter():
        if libc.unshare(CLONE_NEWNET) != 0:
            raise _errno_error(f"cannot create network namespace {name}")

    try:
        with _switched(libc, enter):
            if libc.mount(b"/proc/thread-self/ns/net", os.fsencode(path), b"none", MS_BIND, None) != 0:
                raise _errno_error(f"cannot pin network namespace {name} at {path}")
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    except BaseException:
        remove_netns(name)
        raise
    return path


def netns_iproute(name: str):
    """An IPRoute whose netlink socket lives in the named netns (usable from the host's); as
    every IPRoute, `with` closes it."""
    IPRoute, _ = _pyroute2()
    libc = _libc()
    fd = os.open(netns_path(name), os.O_RDONLY)
    try:
        def enter():
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise _errno_error(f"cannot enter network namespace {name}")

        with _switched(libc, enter):
            return IPRoute()
    finally:
        os.close(fd)


def remove_netns(name: str) -> None:
    """Unmount the bind mount that pins the namespace and remove the name (`ip netns del`).
    The namespace itself goes when its last process and interface reference go."""
    path = netns_path(name)
    if not os.path.lexists(path):
        return
    _libc().umount2(os.fsencode(path), MNT_DETACH)   # fails harmlessly when a kill left it unmounted
    path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# links


def link_exists(ifname: str) -> bool:
    """An interface of that name in the host's namespace (sysfs: no netlink round trip)."""
    return os.path.lexists(SYS_NET / ifname)


def list_links(prefix: str = "") -> list[str]:
    IPRoute, _ = _pyroute2()
    with IPRoute() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(n for n in names if n and n.startswith(prefix))


def bridge_ports(bridge: str) -> list[str]:
    """The interfaces enslaved to the bridge (empty when it does not exist)."""
    try:
        return sorted(p.name for p in (SYS_NET / bridge / "brif").iterdir())
    except FileNotFoundError:
        return []


def delete_link(ifname: str) -> None:
    if not link_exists(ifname):
        return      # the usual case at rm (stop removed the veth): no pyroute2 (~120 ms) to import
    IPRoute, NetlinkError = _pyroute2()
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            return
        try:
            ipr.link("del", index=idx[0])
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise NetworkError(f"cannot delete interface {ifname}: {e}") from None


def host_networks(exclude_ifname: str | None = None) -> list[tuple[str, str]]:
    """(description, cidr) of every IPv4 address and main-table route on the host, except those
    on `exclude_ifname` (our own bridge)."""
    IPRoute, _ = _pyroute2()
    out: list[tuple[str, str]] = []
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for a in ipr.get_addr(family=2):
            dev = names.get(a["index"], "?")
            if dev == exclude_ifname:
                continue
            out.append((f"address on {dev}:", f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"))
        for r in ipr.get_routes(family=2, table=254):
            dev = names.get(r.get_attr("RTA_OIF"), "?")
            if dev == exclude_ifname:
                continue
            dst = r.get_attr("RTA_DST")
            if dst is None:
                continue
            out.append((f"route via {dev}:", f"{dst}/{r['dst_len']}"))
    return out


def ensure_bridge(name: str, gateway_cidr: str) -> None:
    """The bridge `name` up with `gateway_cidr` on it.

    The caller checks the subnet against the host's networks before the first creation.
    A bridge left without its address by a killed command gets the address now.
    """
    IPRoute, NetlinkError = _pyroute2()
    gw = ipaddress.IPv4Interface(gateway_cidr)
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if idx:
            kind = _link_kind(ipr, idx[0])
            if kind != "bridge":
                raise NetworkError(f"interface {name} exists and is not a bridge ({kind or 'unknown kind'})",
                                   hint="set another bridge-name in the configuration")
        else:
            try:
                ipr.link("add", ifname=name, kind="bridge")
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise NetworkError(f"cannot create bridge {name}: {e}") from None
            idx = ipr.link_lookup(ifname=name)
        index = idx[0]
        have = [(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(family=2, index=index)]
        if (str(gw.ip), gw.network.prefixlen) not in have:
            if have:
                cur = ", ".join(f"{a}/{p}" for a, p in have)
                raise NetworkError(f"bridge {name} has address {cur}, not {gateway_cidr}",
                                   hint="the bridge-subnet changed: run `docker-mini network prune` "
                                        "once no container uses the old one")
            ipr.addr("add", index=index, address=str(gw.ip), prefixlen=gw.network.prefixlen)
        ipr.link("set", index=index, state="up")


def _link_kind(ipr, index: int) -> str | None:
    link = ipr.get_links(index)[0]
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info else None


def set_sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys", *key.split("."))
    try:
        if path.read_text().strip() == value:
            return
        path.write_text(value)
    except OSError as e:
        raise NetworkError(f"cannot set {key}={value}: {e.strerror}") from None


def enable_forwarding(bridge: str) -> None:
    set_sysctl("net.ipv4.ip_forward", "1")
    # 127.0.0.1:hostport DNATed to a container leaves through the bridge with a loopback source
    # until postrouting masquerades it; the kernel drops such packets unless route_localnet is on.
    set_sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1")


# ---------------------------------------------------------------------------------------------
# veth pairs


def create_veth(host_name: str, netns: str, bridge: str, *, mac: str, cidr: str, gateway: str | None,
                ifname: str = "eth0") -> None:
    """A veth pair: `host_name` on the bridge, its peer `ifname` inside the named netns with the
    MAC, address and default route (none when `gateway` is None: an internal network). An old
    pair of the same name is replaced."""
    IPRoute, NetlinkError = _pyroute2()
    iface = ipaddress.IPv4Interface(cidr)
    delete_link(host_name)
    ns_fd = os.open(netns_path(netns), os.O_RDONLY)
    try:
        with IPRoute() as ipr:
            br = ipr.link_lookup(ifname=bridge)
            if not br:
                raise NetworkError(f"bridge {bridge} vanished while connecting {host_name}")
            # The peer is born inside the netns as eth0: no temporary name is ever left on the host.
            ipr.link("add", ifname=host_name, kind="veth",
                     peer={"ifname": ifname, "net_ns_fd": ns_fd, "address": mac})
            idx = ipr.link_lookup(ifname=host_name)[0]
            ipr.link("set", index=idx, master=br[0], state="up")
        with netns_iproute(netns) as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            if _link_kind(ipr, idx) != "veth":
                # never configure an eth0 that is not ours (e.g. the host's, were we in its netns)
                raise NetworkError(f"internal: {ifname} in {netns} is not the veth just made; nothing configured")
            ipr.link("set", index=idx, address=mac)
            ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            ipr.link("set", index=idx, state="up")
            if gateway:
                ipr.route("add", dst="0.0.0.0/0", gateway=gateway)
    except NetlinkError as e:
        delete_link(host_name)
        raise NetworkError(f"cannot connect {host_name} to {bridge}: {e}") from None
    finally:
        os.close(ns_fd)


# ---------------------------------------------------------------------------------------------
# host ports


def host_port_state(host_ip: str, port: int, proto: str) -> str:
    """"free", "in-use" (a host process listens: our DNAT would hide it) or "not-local" (the
    address is none of this host's, so nothing would ever arrive there)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return "in-use"
            if e.errno == errno.EADDRNOTAVAIL:
                return "not-local"
            raise NetworkError(f"cannot check host port {host_ip or '0.0.0.0'}:{port}/{proto}: {e}") from None
    return "free"


def ephemeral_ports(host_ip: str, proto: str, tries: int = 50):
    """Ports the kernel would hand out now for a bind to port 0 (free on the host)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    for _ in range(tries):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host_ip or "0.0.0.0", 0))
            except OSError as e:
                raise NetworkError(f"cannot pick a host port on {host_ip or '0.0.0.0'}: {e.strerror}") from None
            yield s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# nftables


def nft_apply(ruleset: str) -> None:
    """Load a ruleset with `nft -f -`: the whole file is one transaction, all or nothing."""
    try:
        proc = subprocess.run(["nft", "-f", "-"], input=ruleset, capture_output=True, text=True)
    except FileNotFoundError:
        raise NetworkError("nft not found", hint="install the nftables package") from None
    if proc.returncode != 0:
        raise NetworkError(f"nft refused our ruleset: {proc.stderr.strip()}")


def remove_bridge_and_table(bridge: str) -> list[str]:
    """Delete our nftables table for the bridge and the bridge itself; returns what was there."""
    removed = []
    table = nftables.table_name(bridge)
    if nft_table_text("ip", table) is not None:
        nft_apply(nftables.render_delete_table(bridge))
        removed.append(f"nftables table ip {table}")
    if link_exists(bridge):
        delete_link(bridge)
        removed.append(f"bridge {bridge}")
    return removed


def nft_table_text(family: str, name: str) -> str | None:
    proc = subprocess.run(["nft", "list", "table", family, name], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None
