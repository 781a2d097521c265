"""`ps`: every container of the root with its observed status."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from reconciler.engine.containers.liveness import current_state
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
    record: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"ContainerState(id={self.id[:12]!r}, name={self.name!r}, status={self.status!r})"


def command_of(rec: dict) -> str:
    words = [rec.get("path", ""), *rec.get("args", [])]
    return " ".join(shlex.quote(a) if (" " in a or not a) else a for a in words)


def list_containers(engine, all: bool = True) -> list[ContainerState]:
    out = []
    for rec in all_records(engine):
        st = current_state(engine, rec, grace=0.05)
        if st.get("status") == "creating":
            continue                              # not a container yet
        if not all and st.get("status") != "running":
            continue
        out.append(ContainerState(
            id=rec["id"], name=rec.get("name", ""), image=rec.get("image", ""),
            image_id=rec.get("image_id", ""), command=command_of(rec), created=rec.get("created", ""),
            status=st.get("status", "dead"), exit_code=st.get("exit_code"),
            started_at=st.get("started_at"), finished_at=st.get("finished_at"), pid=st.get("pid", 0),
            labels=rec.get("labels") or {}, ports=(rec.get("network") or {}).get("ports", []),
            record=rec))
    out.sort(key=lambda c: c.created, reverse=True)
    return out
