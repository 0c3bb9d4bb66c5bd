"""The pace of a rate-limited job: when its next items may go, by the database's clock.

A batch about to send a chunk takes a slot for the chunk's items: from the pace's next free
moment, items ÷ rate seconds long, and the next free moment moves to the slot's end. One
statement takes it, so slots taken from any number of workers never overlap, and the items
of the whole job, whatever its tree, go no faster than the rate. A chunk's slot is one row
write: nothing is written per item.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, text, update

from jobservice.db.engine import upsert
from jobservice.db.rows import JobKey, now_millis
from jobservice.db.tables import PaceRow
from jobservice.execution.job import job_pace

_PACE = PaceRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Slot:
    """A slot taken: it starts at ``start`` (epoch seconds by the database's clock), which was
    ``now`` when it was taken."""

    now: float
    start: float


def database_now(connection: Connection) -> float:
    """Epoch seconds by the database's clock: every worker paces by the same one. A SQLite
    file is on this machine, whose clock its workers share."""
    if connection.dialect.name == "postgresql":
        return float(
            connection.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
        )
    return time.time()


def take_slot(engine: Engine, pace: str, items: int, rate: float) -> Slot:
    """Take the next slot of ``pace`` for ``items`` at ``rate`` items a second."""
    span = items / rate
    insert = upsert(engine)(_PACE)
    with engine.begin() as connection:
        now = database_now(connection)
        later = func.greatest if connection.dialect.name == "postgresql" else func.max
        statement = insert.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "next_free": later(_PACE.c.next_free, now) + span,
                "updated_time": insert.excluded.updated_time,
            },
        ).returning(_PACE.c.next_free)
        next_free = connection.execute(
            statement, {"key": pace, "next_free": now + span, "updated_time": now_millis()}
        ).scalar_one()
    return Slot(now=now, start=max(now, float(next_free) - span))


def free_now(connection: Connection, pace: str) -> None:
    """Give up the slots taken and not yet used: the rate changed, or the job was paused and
    is going on, and its batches take their slots again from now."""
    connection.execute(
        update(_PACE)
        .where(_PACE.c.key == pace)
        .values(next_free=database_now(connection), updated_time=now_millis())
    )


def job_deleted(connection: Connection, key: JobKey) -> None:
    """In the transaction that deletes the job: its pace goes with it."""
    connection.execute(delete(_PACE).where(_PACE.c.key == job_pace(*key)))


class Pace:
    """The pace reads and writes of the worker's activities, off the event loop; without a
    job database (a unit test's worker) every slot starts now."""

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine

    async def take_slot(self, pace: str, items: int, rate: float) -> float:
        """When the slot taken starts, in epoch seconds."""
        if self.engine is None:
            return time.time()
        slot = await asyncio.to_thread(take_slot, self.engine, pace, items, rate)
        return slot.start
