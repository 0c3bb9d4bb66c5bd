"""The job database activities of a steered job: a batch of a rate-limited job (or of a job
sending to a limited pipe) takes a slot of its pace before each chunk, and the job's workflow
keeps a tuned steering in its row.

They run as local activities: a slot a chunk, never one an item (see
:mod:`jobservice.db.pace` and :mod:`jobservice.db.pipes`).
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from jobservice.db.pace import Pace
from jobservice.db.pipes import PipeSlots
from jobservice.db.store import JobStore
from jobservice.execution.job import PaceRequest, PipeSlot, PipeSlotRequest, SteerRecord
from jobservice.execution.names import STEER_JOB, TAKE_PACE_SLOT, TAKE_PIPE_SLOT


class SteeringActivities:
    """The pace of rate-limited jobs and the steering in their rows; with the job store."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._pace = Pace(store.engine)
        self._pipe_slots = PipeSlots(store.engine)

    @activity.defn(name=TAKE_PACE_SLOT)
    async def take_pace_slot(self, request: PaceRequest) -> float:
        """Take the next slot of a job's pace for a chunk: when it starts, in epoch seconds by
        the job database's clock (the clock every worker's chunks keep to)."""
        return await self._pace.take_slot(request.pace, request.items, request.rate)

    @activity.defn(name=TAKE_PIPE_SLOT)
    async def take_pipe_slot(self, request: PipeSlotRequest) -> PipeSlot:
        """Take the next slot of a job sending to a limited pipe, at the job's share of the
        pipe's limit: when it starts, for how many items, at what rate."""
        return await self._pipe_slots.take(request)

    @activity.defn(name=STEER_JOB)
    async def steer_job(self, record: SteerRecord) -> bool:
        """Keep the job's steering in its row (and free its pace, when asked); False when the
        row is gone."""
        return await asyncio.to_thread(self._store.steer, record)
