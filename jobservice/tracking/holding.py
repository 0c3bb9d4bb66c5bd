"""Passing recorded results on to their ``to`` queues as their job's status allows.

A result is always recorded first; what follows depends on the job's row, read at most a few
times a second per job (never once per message):

- Active or Waiting: it goes on to its ``to`` queue, the next stage of a pipeline.
- Paused: it waits on the job's own paused pipe (a durable queue, declared when first
  needed), with its ``to`` in a header, until the job resumes; the keeper of paused pipes
  (:mod:`jobservice.tracking.paused`) passes it on then.
- Cancelled or Failed: it is dropped, and counted as dropped on the job. No row (the job was
  deleted): dropped.
- Completed: it goes on. The result whose signal completed the job may read its job
  Completed already; a late duplicate comes for a batch that has ended, and goes nowhere.

While the job database cannot be read, results go on as they did before it was asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from enum import Enum

from sqlalchemy import Engine

from jobservice.db.gate import GO_ON, JobGate
from jobservice.db.paused import count_dropped, count_held
from jobservice.db.rows import JobKey
from jobservice.jobs.pipes import paused_pipe
from jobservice.jobs.status import JobStatus
from jobservice.metrics import TRACKING_DROPPED, TRACKING_FORWARDED, TRACKING_HELD
from jobservice.rabbitmq.broker import Broker, TargetQueueMissingError

_log = logging.getLogger(__name__)

TO_HEADER = "x-jobservice-to"
"""The header of a held result naming the queue it goes on to once its job resumes."""
PASSED_ON = (*GO_ON, JobStatus.COMPLETED)
"""The statuses whose results go on to their ``to`` queue. A Completed job's last results may
read their job Completed just after their own signal completed it; late duplicates of its
results come for batches that have ended, and go nowhere (:meth:`Forwarding.drop`)."""
STATUS_SECONDS = 0.05
"""How old a job's status may be when a result of it is passed on."""


class HoldingDelayedError(Exception):
    """Results of a paused job are held but could not be counted: the job database did not
    answer. What brought them is to be recorded and held again (passed on once)."""


class Fate(Enum):
    """What becomes of a job's recorded results that name a ``to`` queue."""

    FORWARD = "forward"
    HOLD = "hold"
    DROP = "drop"


def fate_of(status: JobStatus | None) -> Fate:
    """What a job's status (None: it was deleted) makes of its results."""
    if status in PASSED_ON:
        return Fate.FORWARD
    if status is JobStatus.PAUSED:
        return Fate.HOLD
    return Fate.DROP


class Forwarding:
    """Forwards, holds or drops a job's recorded results by its status."""

    def __init__(self, broker: Broker, gate: JobGate, engine: Engine) -> None:
        self._broker = broker
        self._gate = gate
        self._engine = engine
        self._warned = False

    async def pass_on(self, key: JobKey, queue: str, bodies: Sequence[bytes]) -> None:
        """Pass results of job ``key`` on to ``queue`` as the job's status says. Raises
        :class:`TargetQueueMissingError` when they are to go on and ``queue`` does not exist,
        and what the broker raises."""
        fate, status = await self._fate(key)
        if fate is Fate.HOLD:
            # Read afresh: the pipe is declared only for a job the row says is paused now, so
            # that a pipe the keeper has just emptied and removed is not made again.
            fate, status = await self._fate(key, fresh=True)
        if fate is Fate.FORWARD:
            await self._broker.publish(queue, bodies)
            TRACKING_FORWARDED.inc(len(bodies))
        elif fate is Fate.HOLD:
            await self._hold(key, queue, bodies)
        else:
            await self._drop(key, status, len(bodies))

    async def _hold(self, key: JobKey, queue: str, bodies: Sequence[bytes]) -> None:
        pipe = paused_pipe(self._broker.settings.tracking_pipe, *key)
        await self._broker.ensure_queue(pipe, declare=True)
        try:
            await self._broker.publish(pipe, bodies, headers={TO_HEADER: queue})
        except TargetQueueMissingError:  # removed since it was declared: once more
            await self._broker.ensure_queue(pipe, declare=True)
            await self._broker.publish(pipe, bodies, headers={TO_HEADER: queue})
        TRACKING_HELD.inc(len(bodies))
        # Counted once they are there, and before what brought them is acked: a keeper that
        # cleared the count of a pipe it emptied meanwhile sees this one, and a consumer
        # stopped in between holds them again when they come again (the keeper passes an
        # item's result on once).
        try:
            await asyncio.to_thread(count_held, self._engine, key, len(bodies))
        except Exception as exc:  # the database is away: held, not yet counted; again later
            raise HoldingDelayedError(
                f"results of paused job {key[1]!r} are held but cannot be counted yet, the "
                f"job database did not answer: {exc}"
            ) from exc

    async def drop(self, key: JobKey, results: int) -> None:
        """Drop results of job ``key`` that came for a batch that has ended: late duplicates
        of a job that goes on or completed, and otherwise dropped as its results."""
        try:
            status = await self._gate.status(*key)
        except Exception:  # the database is away: the metric counts them all the same
            status = None
        await self._drop(key, status, results)

    async def _drop(self, key: JobKey, status: JobStatus | None, results: int) -> None:
        TRACKING_DROPPED.labels("ended").inc(results)
        if status not in (JobStatus.CANCELLED, JobStatus.FAILED):
            return
        try:
            await asyncio.to_thread(count_dropped, self._engine, key, results)
        except Exception as exc:  # the results are dropped all the same; the metric counts them
            _log.warning("could not count %d dropped results of job %s: %s", results, key[1], exc)

    async def _fate(self, key: JobKey, *, fresh: bool = False) -> tuple[Fate, JobStatus | None]:
        """What becomes of the job's results, and its status; while the job database cannot
        be read, they go on."""
        try:
            status = await self._gate.status(*key, fresh=fresh)
        except Exception as exc:  # the database is away: results go on as they did before
            if not self._warned:
                _log.warning(
                    "cannot read job statuses; results are passed on whatever their job's "
                    "status until the job database answers: %s",
                    exc,
                )
                self._warned = True
            return Fate.FORWARD, None
        self._warned = False
        return fate_of(status), status
