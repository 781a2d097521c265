"""Container networking, called by engine.containers (whose record store it reads):

    prepare(engine, container_id, opts) -> dict   at create, before anything else is created
    setup(engine, record) -> str | None           at start: netns path for runc (None: host)
    teardown(engine, record)                      at stop / after exit
    release(engine, record)                       at rm
    network_settings(engine, record) -> dict      inspect's NetworkSettings

State of our own, under layout.network_dir:

    endpoints/<container-id>.json   the lease: mode, network, ip, mac, ports, names, further
                                    networks ("attachments", eth1...); "active" while set up
    rules/<bridge>.sha256           the digest of the nftables table last loaded for a bridge
                                    (none for --network none: nothing to lease or set up)

Files of the container's own that setup writes (creating them when missing, always in place):

    overlay-containers/<id>/hosts         localhost, itself, every running peer on the bridge
    overlay-containers/<id>/resolv.conf   the host's, loopback nameservers dropped

The lifecycle bind-mounts them after setup returns and never rewrites them; peers' hosts files
are rewritten here whenever a container on the bridge starts or stops. prepare runs under the
lifecycle's mutation lock, after container.json ("creating") exists: a lease whose container
directory is gone is a killed create's (or rm's) leftover, and the next command drops it.

The lease is the truth for IP, MAC and ports, so a container keeps them across stop/start.
Names on the host are derived from the container id (netns dm-<id>, host veth vdm<id[:10]>),
so whatever a killed command left behind is found and removed by the next one.

Network objects (networks): the default network "bridge" from the configuration, and
user-defined ones under <root>/networks/<id>.json, each its own bridge, subnet and table.

Modules: networks (network objects), connect (further networks of a container), endpoints (the leases on disk), lease (prepare), setup, teardown (teardown, release,
clean-up of what a killed command left, prune), rules (bridge, nftables), etcfiles (hosts,
resolv.conf), settings (inspect, network ls), batch (what a batch of starts and stops does once).
"""

from reconciler.engine.network.batch import batch
from reconciler.engine.network.connect import connect, disconnect
from reconciler.engine.network.endpoints import all_endpoints
from reconciler.engine.network.etcfiles import refresh_hosts, render_hosts_for
from reconciler.engine.network.lease import prepare
from reconciler.engine.network.rules import apply_rules
from reconciler.engine.network.settings import inspect_network, list_networks, network_settings
from reconciler.engine.network.setup import process_netns, setup
from reconciler.engine.network.teardown import cleanup_stale, prune, release, teardown

__all__ = ["all_endpoints", "apply_rules", "batch", "cleanup_stale", "connect", "disconnect", "inspect_network", "list_networks",
           "network_settings", "prepare", "process_netns", "prune", "refresh_hosts", "release",
           "render_hosts_for", "setup", "teardown"]
