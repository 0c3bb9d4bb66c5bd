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
from jobservice.db.tables import PaceRow, PipeUserRow
from jobservice.execution.job import job_pace

_PACE = PaceRow.__table__  # type: ignore[attr-defined]
_USER = PipeUserRow.__table__  # type: ignore[attr-defined]


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
    with engine.begin() as connection:
        return take(connection, pace, items, rate)


def take(connection: Connection, pace: str, items: int, rate: float) -> Slot:
    """In a transaction: take the next slot of ``pace`` for ``items`` at ``rate``.

    What the pace has given out and not yet reached is owed in items, not seconds: when the
    rate is below the one it was given out at (a share of a pipe that fell), the time still
    owed is stretched by old rate ÷ new rate. The items already promised go at the old rate,
    and over the next seconds the pace averages out to the new one. A rate above it is not
    taken to shrink that time: slots given out are never overlapped."""
    span = items / rate
    now = database_now(connection)
    later = func.greatest if connection.dialect.name == "postgresql" else func.max
    stretch = later(func.coalesce(_PACE.c.rate, rate) / rate, 1.0)
    owed = (_PACE.c.next_free - now) * stretch
    insert = upsert(connection.engine)(_PACE)
    statement = insert.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "next_free": later(now + owed, now) + span,
            "rate": insert.excluded.rate,
            "updated_time": insert.excluded.updated_time,
        },
    ).returning(_PACE.c.next_free)
    next_free = connection.execute(
        statement,
        {"key": pace, "next_free": now + span, "rate": rate, "updated_time": now_millis()},
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
    """In the transaction that deletes the job: its pace goes with it, and its share of its
    pipe."""
    connection.execute(delete(_PACE).where(_PACE.c.key == job_pace(*key)))
    connection.execute(delete(_USER).where(_USER.c.pace == job_pace(*key)))


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
