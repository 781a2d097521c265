"""L1: adapters to the outside world (disk, registry, runc/conmon, netlink, nftables).

    registry/     the registry v2 client (requests): auth, transport, manifests, blobs
    layerstore/   extracted layers and their records;   imagestore   image records
    overlay/      a container's read-write layer, rootfs mount and disk quota
    runtime/      runc and conmon: bundles, create/start/stop, exec sessions, pids
    network       netns, bridge, veth (pyroute2) and our nftables table
    cgroups       reading a container's cgroup: limits and OOM state
    attach        conmon's attach socket and a user's terminal
    credentials   registry credentials (ours and Docker's config)
    statefiles    atomic state-file writes, JSON reads and the engine lock

An adapter may import reconciler.core, never another adapter; the engine composes them.
"""
