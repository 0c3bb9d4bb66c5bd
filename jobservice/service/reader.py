"""Reading jobs: a job's row as the view users see, with what the row cannot know.

The service layer reads through it, and so does ``jobservice status``, which needs nothing
else of the service: it loads SQLAlchemy Core and Temporal's service client, not the ORM
mapping, the workflow client, the plugins or the job types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jobservice.db.rows import JobRows, open_rows, paused_counts
from jobservice.errors import JobNotFoundError
from jobservice.jobs.ids import validate_ids
from jobservice.jobs.job import JobCounts, JobView
from jobservice.jobs.status import DEFAULT_PARTITION, JobStatus
from jobservice.service.stalls import JobHealth
from jobservice.settings import Settings
from jobservice.temporal.cluster import connect_service


class JobReader:
    """Jobs as their rows hold them, and why a running one is not moving."""

    def __init__(self, rows: JobRows, health: JobHealth) -> None:
        self._rows = rows
        self._health = health

    @classmethod
    async def connect(cls, settings: Settings) -> JobReader:
        """A reader over the configured job database and Temporal, both checked."""
        rows = await open_rows(settings.database_url())
        service = await connect_service(settings.temporal)
        return cls(rows, JobHealth(service, settings.temporal.namespace, settings))

    async def row(self, partition: str, job_id: str) -> Mapping[str, Any]:
        """The job's row, column by column, or a :class:`JobNotFoundError`."""
        validate_ids(partition, job_id)
        return await asyncio.to_thread(self._row, partition, job_id)

    def _row(self, partition: str, job_id: str) -> Mapping[str, Any]:
        row = self._rows.job_row(partition_id=partition, job_id=job_id)
        if row is None:
            raise JobNotFoundError(f"no job {job_id!r} in partition {partition!r}")
        return row

    async def get(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """The job's status, counts and failures, as its row holds them, and why it is not
        moving when nobody works on it."""
        validate_ids(partition, job_id)
        views = await asyncio.to_thread(self._read, partition, job_id)
        return (await self._health.annotate(views))[0]

    def _read(self, partition: str, job_id: str) -> list[JobView]:
        return self.views_of([self._row(partition, job_id)])

    def views_of(self, rows: Sequence[Mapping[str, Any]]) -> list[JobView]:
        """The views of ``rows`` (column names to values), in their order, with the items
        workers are handling now counted in flight. It reads the database: call it on a
        thread, with whatever read the rows, so that a request takes one hand-off."""
        views = [job_view(row) for row in rows]
        running = [(v.partition, v.id) for v in views if v.status in _HANDLING]
        if running:
            in_hand = self._rows.items_in_hand(running)
            views = [
                _with_in_hand(view, in_hand.get((view.partition, view.id), 0)) for view in views
            ]
        if all("paused_held" in row for row in rows):  # read with the rows
            pipes = [paused_counts(row["paused_held"], row["paused_dropped"]) for row in rows]
        elif views:
            found = self._rows.paused_pipes([(v.partition, v.id) for v in views])
            pipes = [found.get((view.partition, view.id)) for view in views]
        return [_with_pipe(view, counts) for view, counts in zip(views, pipes, strict=True)]

    async def annotate(self, views: Sequence[JobView]) -> list[JobView]:
        """``views`` with the reasons a running job is not moving, where there are any."""
        return await self._health.annotate(views)


_HANDLING = (JobStatus.ACTIVE, JobStatus.PAUSED)
"""Statuses in which a worker may have an item of the job in a handler's hands: a paused job's
chunks finish the call they are in."""


def _with_in_hand(view: JobView, items: int) -> JobView:
    """The row's ``in_flight`` counts items published to a queue and not yet settled; the
    items a ``local:`` handler has in hand are the workers' to say."""
    if not items:
        return view
    counts = view.counts.model_copy(update={"in_flight": view.counts.in_flight + items})
    return view.model_copy(update={"counts": counts})


def _with_pipe(view: JobView, counts: tuple[int, int] | None) -> JobView:
    """Results the job holds on its paused pipe (only while it is paused: once it goes on,
    they are being passed on), and results it dropped."""
    if counts is None:
        return view
    held, dropped = counts
    if view.status is not JobStatus.PAUSED:
        held = 0
    return view.model_copy(update={"held_messages": held, "dropped_messages": dropped})


def job_view(row: Mapping[str, Any]) -> JobView:
    """What a job's row (column names to values) says of it, by itself: its columns as they
    are, its counts as one object, its times as datetimes."""
    status = JobStatus(row["status"])
    updated = _time(row["last_update_time"])
    return JobView.model_validate(
        {
            **{name: row[name] for name in _AS_STORED},
            "id": row["job_id"],
            "partition": row["partition_id"],
            "counts": {name: row[name] for name in _COUNTS},
            "create_time": _time(row["create_time"]),
            "last_update_time": updated,
            "close_time": updated if status.is_terminal else None,
            "last_redrive_time": _time(row["last_redrive_time"])
            if row.get("last_redrive_time")
            else None,
            # A row made before steering was kept has the tolerance its definition gave.
            "failure_tolerance": row.get("failure_tolerance")
            or (row["definition"] or {}).get("failureTolerance")
            or "0",
        }
    )


_COUNTS = tuple(JobCounts.model_fields)
_AS_STORED = tuple(
    set(JobView.model_fields)
    - {"id", "partition", "counts", "create_time", "last_update_time", "close_time"}
    - {"held_messages", "dropped_messages", "last_redrive_time"}
)
"""The view's fields that the row holds in columns of the same name."""


def _time(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)
