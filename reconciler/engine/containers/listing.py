"""`ps`: every container of the root with its observed status."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from reconciler.engine.containers.liveness import current_state
from reconciler.engine.containers.records import ContainerRecord
from reconciler.engine.containers.store import all_records


@dataclass
class ContainerState:
    """One row of `ps`: the record plus the observed status."""
    id: str
    name: str
    image: str
    image_id: str
    command: str                  # Docker's COMMAND column source: path + args joined
    created: str                  # RFC 3339
    status: str                   # created | running | exited | removing | dead
    exit_code: int | None
    started_at: str | None
    finished_at: str | None
    pid: int
    labels: dict
    ports: list                   # from the network record, for the PORTS column
    record: ContainerRecord

    def __repr__(self) -> str:
        return f"ContainerState(id={self.id[:12]!r}, name={self.name!r}, status={self.status!r})"


def command_of(rec: ContainerRecord) -> str:
    words = rec.command
    return " ".join(shlex.quote(a) if (" " in a or not a) else a for a in words)


def list_containers(engine, all: bool = True) -> list[ContainerState]:
    out = []
    for rec in all_records(engine):
        st = current_state(engine, rec, grace=0.05)
        if st.status == "creating":
            continue                              # not a container yet
        if not all and not st.running:
            continue
        out.append(ContainerState(
            id=rec.id, name=rec.name, image=rec.image, image_id=rec.image_id,
            command=command_of(rec), created=rec.created, status=st.status or "dead",
            exit_code=st.exit_code, started_at=st.started_at, finished_at=st.finished_at,
            pid=st.pid, labels=rec.labels, ports=rec.network.ports, record=rec))
    out.sort(key=lambda c: c.created, reverse=True)
    return out
