"""L1: adapters to the outside world (disk, registry, runc/conmon, netlink, nftables).

An adapter may import reconciler.core, never another adapter; the engine composes them.
"""
