"""The count of each job's paused pipe: results held there, and results dropped.

The tracking consumer counts a result held once it is on the job's paused pipe, before the
message that brought it is acked; the keeper of paused pipes counts it out again as it passes
it on or drops it, and clears the count once the pipe is gone, unless more was counted in
meanwhile. So a pipe that holds something has a count: a job with a count is a job whose pipe
may hold something, and the keeper looks at it until it is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, or_, select, update

from jobservice.db.engine import upsert
from jobservice.db.rows import JobKey, now_millis
from jobservice.db.tables import JobRow, PausedPipeRow
from jobservice.jobs.status import JobStatus

_PIPES = PausedPipeRow.__table__  # type: ignore[attr-defined]
_JOBS = JobRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HeldPipe:
    """A job whose paused pipe may hold results, and whose status says what to do with them."""

    key: JobKey
    held: int
    status: JobStatus | None
    """None: the job was deleted."""


def count_held(engine: Engine, key: JobKey, results: int) -> None:
    """Count ``results`` as held on the job's paused pipe, once they are there."""
    _add(engine, key, held=results, dropped=0)


def count_dropped(engine: Engine, key: JobKey, results: int) -> None:
    """Count ``results`` of the job as dropped: not passed on, the job having ended."""
    _add(engine, key, held=0, dropped=results)


def _add(engine: Engine, key: JobKey, *, held: int, dropped: int) -> None:
    partition_id, job_id = key
    now = now_millis()
    statement = (
        upsert(engine)(_PIPES)
        .values(
            partition_id=partition_id,
            job_id=job_id,
            held=held,
            dropped=dropped,
            updated_time=now,
            job_deleted=False,
        )
        .on_conflict_do_update(
            index_elements=["partition_id", "job_id"],
            set_={
                "held": _PIPES.c.held + held,
                "dropped": _PIPES.c.dropped + dropped,
                "updated_time": now,
            },
        )
    )
    with engine.begin() as connection:
        connection.execute(statement)


def job_deleted(connection: Connection, key: JobKey) -> None:
    """In the transaction that deletes the job: a pipe that may hold results keeps its row,
    marked, for the keeper to drop them and remove both; any other row goes."""
    connection.execute(update(_PIPES).where(*_is(key), _PIPES.c.held > 0).values(job_deleted=True))
    connection.execute(delete(_PIPES).where(*_is(key), _PIPES.c.held <= 0))


def count_released(engine: Engine, key: JobKey, results: int, *, dropped: int = 0) -> None:
    """Count ``results`` off the job's paused pipe: passed on, or of them ``dropped``."""
    with engine.begin() as connection:
        connection.execute(
            update(_PIPES)
            .where(*_is(key))
            .values(
                held=_PIPES.c.held - results,
                dropped=_PIPES.c.dropped + dropped,
                updated_time=now_millis(),
            )
        )


def pipe_gone(engine: Engine, key: JobKey, *, held: int, job_deleted: bool = False) -> bool:
    """The job's paused pipe is gone: clear its count, unless it has changed from ``held``
    meanwhile (a consumer counted in what it put on a pipe it declared again). The row of a
    deleted job goes with it. Whether it was cleared."""
    matching = (*_is(key), _PIPES.c.held == held)
    with engine.begin() as connection:
        if job_deleted:
            done = connection.execute(delete(_PIPES).where(*matching))
        else:
            done = connection.execute(
                update(_PIPES).where(*matching).values(held=0, updated_time=now_millis())
            )
    return bool(done.rowcount)


def held_pipes(engine: Engine) -> list[HeldPipe]:
    """The jobs whose paused pipes may hold results and are no longer paused (resumed, ended
    or deleted): what the keeper of paused pipes has to pass on or drop."""
    joined = _PIPES.outerjoin(
        _JOBS,
        and_(_JOBS.c.partition_id == _PIPES.c.partition_id, _JOBS.c.job_id == _PIPES.c.job_id),
    )
    statement = (
        select(
            _PIPES.c.partition_id,
            _PIPES.c.job_id,
            _PIPES.c.held,
            _PIPES.c.job_deleted,
            _JOBS.c.status,
        )
        .select_from(joined)
        .where(
            _PIPES.c.held != 0,
            or_(
                _PIPES.c.job_deleted,
                _JOBS.c.status.is_(None),
                _JOBS.c.status != JobStatus.PAUSED.value,
            ),
        )
    )
    with engine.connect() as connection:
        found = connection.execute(statement).all()
    return [
        HeldPipe(
            key=(str(partition_id), str(job_id)),
            held=int(held),
            status=None if status is None or deleted else JobStatus(status),
        )
        for partition_id, job_id, held, deleted, status in found
    ]


def _is(key: JobKey) -> tuple[Any, Any]:
    return (_PIPES.c.partition_id == key[0], _PIPES.c.job_id == key[1])
