"""Where the batches of a stopped job stood: written by each batch as it stops, read by the
batches of a redrive that carry on from there (see
:class:`~jobservice.db.tables.BatchCheckpointRow`).

One row a batch, written once as it stops: never one per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, select

from jobservice.db.engine import upsert
from jobservice.db.rows import JobKey, now_millis
from jobservice.db.tables import BatchCheckpointRow

_CHECKPOINTS = BatchCheckpointRow.__table__  # type: ignore[attr-defined]


def path_name(path: Sequence[int]) -> str:
    """A batch's place in the tree as a row names it: '' for the root, '2.7' below."""
    return ".".join(str(index) for index in path)


def keep(engine: Engine, key: JobKey, path: Sequence[int], state: str) -> None:
    """The batch at ``path`` stopped where ``state`` (JSON) says; a later stop replaces it."""
    insert = upsert(engine)(_CHECKPOINTS)
    values = {
        "partition_id": key[0],
        "job_id": key[1],
        "path": path_name(path),
        "state": state,
        "written_time": now_millis(),
    }
    statement = insert.on_conflict_do_update(
        index_elements=["partition_id", "job_id", "path"],
        set_={"state": insert.excluded.state, "written_time": insert.excluded.written_time},
    )
    with engine.begin() as connection:
        connection.execute(statement, values)


def load(engine: Engine, key: JobKey, path: Sequence[int]) -> str | None:
    """The state the batch at ``path`` stopped in, as JSON; None if it never wrote one."""
    with engine.connect() as connection:
        return connection.execute(
            select(_CHECKPOINTS.c.state).where(*_is(key), _CHECKPOINTS.c.path == path_name(path))
        ).scalar_one_or_none()


def has_root(connection: Connection, key: JobKey) -> bool:
    """Whether the job's root batch wrote where it stopped."""
    found = connection.execute(
        select(func.count())
        .select_from(_CHECKPOINTS)
        .where(*_is(key), _CHECKPOINTS.c.path == path_name(()))
    ).scalar_one()
    return bool(found)


def job_deleted(connection: Connection, key: JobKey) -> None:
    """In the transaction that deletes the job: its checkpoints go with it."""
    connection.execute(delete(_CHECKPOINTS).where(*_is(key)))


def _is(key: JobKey) -> list[Any]:
    return [and_(_CHECKPOINTS.c.partition_id == key[0], _CHECKPOINTS.c.job_id == key[1])]


class Checkpoints:
    """The checkpoint reads and writes of the worker's activities, off the event loop;
    without a job database (a unit test's worker) nothing is kept."""

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine

    async def keep(self, key: JobKey, path: Sequence[int], state: str) -> None:
        if self.engine is not None:
            await asyncio.to_thread(keep, self.engine, key, path, state)

    async def load(self, key: JobKey, path: Sequence[int]) -> str | None:
        if self.engine is None:
            return None
        return await asyncio.to_thread(load, self.engine, key, path)
