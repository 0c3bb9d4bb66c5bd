"""Limits of target pipes: items a second for every job sending to a pipe together, the
capacity of the system behind it rather than one job's.

A pipe's limit is divided among the jobs sending to it, fairly: each gets an equal share, and
a job held below its share by its own limit leaves the rest to the others. A job's batches
take the slots of its own pace (:mod:`jobservice.db.pace`) at the share the job has when
they take one; the shares are worked out anew at every slot, from the jobs that took one
lately, so a job that joins, ends or pauses moves the others' shares within a slot or two,
and a change of the limit reaches every job sending to the pipe the same way.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, select, update

from jobservice.db.engine import upsert
from jobservice.db.pace import database_now, take
from jobservice.db.rows import JobKey, now_millis
from jobservice.db.tables import JobRow, PipeLimitRow, PipeUserRow
from jobservice.execution.job import PipeSlot, PipeSlotRequest, PipeWord, job_pace
from jobservice.jobs.status import JobStatus

_LIMIT = PipeLimitRow.__table__  # type: ignore[attr-defined]
_USER = PipeUserRow.__table__  # type: ignore[attr-defined]
_JOB = JobRow.__table__  # type: ignore[attr-defined]

JOIN_GRACE_SECONDS = 5.0
"""How long a job that has just started counts among a pipe's users before it takes a slot:
its root batch is splitting."""
SHARE_GRACE_SECONDS = 2.0
"""How long after the end of its last slot a job still counts among a pipe's users: its
batches take their next slot before the last one ends while it is sending."""
_FORGOTTEN_SECONDS = 60.0
_UNFINISHED = (JobStatus.WAITING.value, JobStatus.ACTIVE.value, JobStatus.PAUSED.value)


def fair_share(limit: float, others: Sequence[float | None], mine: float | None) -> float:
    """A job's share of a pipe's ``limit``: equal shares, except that a job whose own limit
    (``mine``, ``others``'; None: none) is below its share gets its own limit, and the rest
    is shared among the others."""
    capped = sorted(own for own in (*others, mine) if own is not None)
    users, left = len(others) + 1, limit
    for own in capped:
        if own * users >= left:
            break
        left -= own
        users -= 1
    if users == 0:  # every job is held below its share: each goes at its own limit
        assert mine is not None
        return mine
    level = left / users
    return level if mine is None else min(mine, level)


def take_pipe_slot(engine: Engine, request: PipeSlotRequest) -> PipeSlot:
    """Take the next slot of a job sending to ``request.pipe``: at its share of the pipe's
    limit, or at its own limit when the pipe has none (now); with neither, at once."""
    with engine.begin() as connection:
        now = database_now(connection)
        limit = connection.execute(
            select(_LIMIT.c.rate_limit).where(_LIMIT.c.pipe == request.pipe)
        ).scalar_one_or_none()
        if limit is None:
            if request.rate is None:
                return PipeSlot(start=now, items=request.items)
            rate = request.rate
        else:
            rate = fair_share(limit, _other_users(connection, request, now), request.rate)
        items = min(request.items, max(1, math.ceil(rate * request.seconds)))
        slot = take(connection, request.pace, items, rate)
        if limit is not None:
            _use(connection, request, rate, until=slot.start + items / rate)
    return PipeSlot(start=slot.start, items=items, rate=rate)


def _other_users(
    connection: Connection, request: PipeSlotRequest, now: float
) -> list[float | None]:
    """The own limits of the other jobs sending to the pipe lately (None: no limit)."""
    connection.execute(
        delete(_USER).where(_USER.c.pipe == request.pipe, _USER.c.until < now - _FORGOTTEN_SECONDS)
    )
    rows = connection.execute(
        select(_USER.c.own_limit).where(
            _USER.c.pipe == request.pipe, _USER.c.pace != request.pace, _USER.c.until > now
        )
    )
    return [own for (own,) in rows]


def _use(connection: Connection, request: PipeSlotRequest, share: float, *, until: float) -> None:
    insert = upsert(connection.engine)(_USER)
    values = {"own_limit": request.rate, "share": share, "until": until + SHARE_GRACE_SECONDS}
    connection.execute(
        insert.values(pipe=request.pipe, pace=request.pace, **values).on_conflict_do_update(
            index_elements=["pipe", "pace"], set_=values
        )
    )


@dataclass(frozen=True)
class PipeState:
    """A target pipe as the dashboard and ``pipes list`` show it."""

    name: str
    rate_limit: float | None
    recent_items_per_second: float
    """Items a second lately, all its jobs together, as their workflows last measured."""
    jobs: int
    """Its unfinished jobs."""


def set_limit(engine: Engine, pipe: str, rate_limit: float | None) -> PipeWord:
    """Set the limit of ``pipe`` (None: take it away): what its jobs are to be told."""
    with engine.begin() as connection:
        if rate_limit is None:
            connection.execute(delete(_LIMIT).where(_LIMIT.c.pipe == pipe))
            connection.execute(delete(_USER).where(_USER.c.pipe == pipe))
            return PipeWord()
        insert = upsert(engine)(_LIMIT)
        epoch = connection.execute(
            insert.values(pipe=pipe, rate_limit=rate_limit, epoch=1, updated_time=now_millis())
            .on_conflict_do_update(
                index_elements=["pipe"],
                set_={
                    "rate_limit": rate_limit,
                    "epoch": _LIMIT.c.epoch + 1,
                    "updated_time": insert.excluded.updated_time,
                },
            )
            .returning(_LIMIT.c.epoch)
        ).scalar_one()
    return PipeWord(limit=rate_limit, epoch=epoch)


@dataclass(frozen=True)
class Deal:
    """A pipe's shares dealt anew as a job joins it: what its users are to be told, and who
    they are (the jobs that lately took a slot of it, not the one joining)."""

    word: PipeWord
    users: list[JobKey]


def join(engine: Engine, pipe: str, key: JobKey, own_limit: float | None) -> Deal | None:
    """Count the job ``key`` among the users of ``pipe`` from now (for a few seconds, until
    it takes slots of its own), and deal the shares anew; None when the pipe has no limit."""
    pace = job_pace(*key)
    with engine.begin() as connection:
        now = database_now(connection)
        word = connection.execute(
            update(_LIMIT)
            .where(_LIMIT.c.pipe == pipe)
            .values(epoch=_LIMIT.c.epoch + 1)
            .returning(_LIMIT.c.rate_limit, _LIMIT.c.epoch)
        ).one_or_none()
        if word is None:
            return None
        users = connection.execute(
            select(_USER.c.pace).where(
                _USER.c.pipe == pipe, _USER.c.pace != pace, _USER.c.until > now
            )
        ).scalars()
        others = [_job_of(user) for user in users]
        request = PipeSlotRequest(pace=pace, pipe=pipe, items=0, rate=own_limit, seconds=0)
        _use(connection, request, share=0.0, until=now + JOIN_GRACE_SECONDS)
    return Deal(PipeWord(limit=word.rate_limit, epoch=word.epoch), others)


def _job_of(pace: str) -> JobKey:
    partition, _, job_id = pace.removeprefix("job:").partition("/")
    return partition, job_id


def limit_of(engine: Engine, pipe: str) -> float | None:
    """The limit of ``pipe``; None: it has none."""
    with engine.connect() as connection:
        limit = connection.execute(
            select(_LIMIT.c.rate_limit).where(_LIMIT.c.pipe == pipe)
        ).scalar_one_or_none()
    return None if limit is None else float(limit)


def jobs_sending_to(engine: Engine, pipe: str) -> list[JobKey]:
    """The unfinished jobs whose items go to ``pipe``."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(_JOB.c.partition_id, _JOB.c.job_id).where(
                _JOB.c.target_pipe == pipe, _JOB.c.status.in_(_UNFINISHED)
            )
        )
        return [(partition, job_id) for partition, job_id in rows]


def pipe_states(
    engine: Engine, names: Sequence[str] = (), *, only: bool = False
) -> list[PipeState]:
    """The pipes with a limit or an unfinished job, and those of ``names``, by name; with
    ``only``, just those of ``names``."""
    with engine.connect() as connection:
        limits: dict[str, float] = {
            pipe: float(rate)
            for pipe, rate in connection.execute(select(_LIMIT.c.pipe, _LIMIT.c.rate_limit))
        }
        active = _JOB.c.status == JobStatus.ACTIVE.value
        rate = func.coalesce(func.sum(_JOB.c.recent_items_per_second).filter(active), 0.0)
        usage = connection.execute(
            select(_JOB.c.target_pipe, rate, func.count())
            .where(_JOB.c.target_pipe.is_not(None), _JOB.c.status.in_(_UNFINISHED))
            .group_by(_JOB.c.target_pipe)
        ).all()
    used = {pipe: (float(rate), int(jobs)) for pipe, rate, jobs in usage}
    return [
        PipeState(
            name=name,
            rate_limit=limits.get(name),
            recent_items_per_second=used.get(name, (0.0, 0))[0],
            jobs=used.get(name, (0.0, 0))[1],
        )
        for name in (sorted(set(names)) if only else sorted({*limits, *used, *names}))
    ]


class PipeSlots:
    """Slots of limited pipes for the worker's activities, off the event loop; without a job
    database (a unit test's worker) every slot starts now, at the job's own rate."""

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine

    async def take(self, request: PipeSlotRequest) -> PipeSlot:
        if self.engine is None:
            return PipeSlot(start=time.time(), items=request.items, rate=request.rate)
        return await asyncio.to_thread(take_pipe_slot, self.engine, request)
