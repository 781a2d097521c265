"""A batch of starts and stops (an apply, a down, `stop`/`rm -f` of many names): what each start
or stop would redo for every container on the bridge is done once, at the end.

Outside a batch, each start and stop rewrites every peer's hosts file (rendered from every
peer: N^2 work, N^3 over a stack of N), and each stop renders and loads the whole nftables
table; each start and create first sweeps what killed commands left (reading every lease and
record). In a batch, the sweep runs once, a stop's rules and every peers' hosts refresh wait
for the end. A starting container's own hosts file and the rules it needs (its ports) are
still written at its start, so it runs as it would alone; its peers learn its name when the
batch ends. Killed mid-batch, the next start or stop on the bridge renders both again whole.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field


@dataclass
class Batch:
    hosts: bool = False      # peers' hosts files to rewrite at the end
    rules: set[str] = field(default_factory=set)    # networks whose nftables table to render at the end
    swept: bool = False      # what killed commands left has been cleaned up once


@contextlib.contextmanager
def batch(engine):
    """Within, engine.network_batch is the Batch; nested uses join the outermost."""
    from reconciler.engine.network.etcfiles import refresh_hosts
    from reconciler.engine.network.networks import find
    from reconciler.engine.network.rules import apply_rules
    from reconciler.core.errors import NetworkNotFound

    if engine.network_batch is not None:
        yield engine.network_batch
        return
    engine.network_batch = b = Batch()
    try:
        yield b
    finally:
        engine.network_batch = None
        if b.rules or b.hosts:
            with engine.mutation():
                for name in sorted(b.rules):
                    try:
                        net = find(engine, name)
                    except NetworkNotFound:
                        continue
                    if engine.netlink.link_exists(net.bridge):
                        apply_rules(engine, net)
                if b.hosts:
                    refresh_hosts(engine)
