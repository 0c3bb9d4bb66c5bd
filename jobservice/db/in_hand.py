"""Items each worker process is handling now, per job: what a job's row cannot hold.

A chunk of a ``local:`` job hands its items to an item handler one at a time. Which chunks
are running, rather than scheduled and waiting for a worker, only the workers know; each
writes its own rows, a few times a second at most, and readers add up the fresh ones. A
worker that has died stops refreshing its rows, and they stop counting.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, delete, insert

from jobservice.db.rows import JobKey
from jobservice.db.tables import ItemsInHandRow

FORGET_MILLIS = 3_600_000
"""Rows this old are a dead worker's: any worker's report removes them."""

_TABLE = ItemsInHandRow.__table__  # type: ignore[attr-defined]


def report_in_hand(
    engine: Engine, *, worker_id: str, items: Mapping[JobKey, int], now: int
) -> None:
    """Replace this worker's rows with ``items`` (jobs with none are left out), in one
    transaction."""
    with engine.begin() as connection:
        connection.execute(
            delete(_TABLE).where(
                (_TABLE.c.worker_id == worker_id) | (_TABLE.c.updated_time < now - FORGET_MILLIS)
            )
        )
        rows = [
            {
                "worker_id": worker_id,
                "partition_id": partition_id,
                "job_id": job_id,
                "items": count,
                "updated_time": now,
            }
            for (partition_id, job_id), count in items.items()
            if count > 0
        ]
        if rows:
            connection.execute(insert(_TABLE), rows)
