"""The pace of a rate-limited job, as one batch keeps to it: before a chunk goes out, the batch
takes a slot for its items from the job's pace (:mod:`jobservice.db.pace`; for a job sending
to a limited pipe, at its share of the pipe's limit: :mod:`jobservice.db.pipes`), waits for it on a
timer, and starts the chunk just before the slot begins; the chunk sends its items within it.

Nothing waits long in an activity: a batch whose slot is ahead holds a timer, not an activity
slot of a worker, until just before it. It costs a slot (one local activity) and a timer a
chunk, never one an item. A chunk of a rate-limited job carries at most :data:`SLOT_SECONDS`
of its rate, so that a change of the rate reaches the next chunks within moments.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import JobContext, PaceSlot, WindowState
    from jobservice.execution.job import PaceRequest, PipeSlot, PipeSlotRequest, job_pace
    from jobservice.execution.names import TAKE_PACE_SLOT, TAKE_PIPE_SLOT
    from jobservice.jobs.steering import Steering
    from jobservice.workflows.database import database

SLOT_SECONDS = 1.0
"""The longest a chunk of a rate-limited job takes at its rate."""
LEAD = timedelta(seconds=1)
"""How long before its slot a chunk is started, to be at work when the slot begins: a timer,
a workflow task and an activity's dispatch take a few hundred milliseconds on a busy worker,
and a chunk that starts late sends what it is behind at once. The chunk waits out the rest,
holding its worker's activity slot that long at most."""


class Pacing:
    """The slots of one batch of a rate-limited job; ``state`` holds the slot taken and not
    yet used, which continue-as-new carries."""

    def __init__(self, context: JobContext, state: WindowState) -> None:
        self._context = context
        self._state = state
        self._drops = 0
        """How often the slot was given up: one taken meanwhile is of a pace given up."""

    def chunk_items(self, rate: float) -> int:
        """The most items a chunk carries at ``rate``."""
        return max(1, math.ceil(rate * SLOT_SECONDS))

    async def room(self, room: int, steering: Steering, left: int) -> int:
        """Items the next chunk may carry now, of ``room``: taking a slot for them if the batch
        has none (``left``: items the batch has still to send), none while its slot is ahead.
        A job sending to a limited pipe takes its slot at its share of the pipe's limit."""
        if room <= 0 or left <= 0:
            return 0
        slot = self._state.slot
        if slot is None:
            drops = self._drops
            if steering.pipe_limit is not None:
                slot = await self._pipe_slot(min(room, left), steering.rate_limit)
            else:
                assert steering.rate_limit is not None
                slot = await self._job_slot(min(room, left), steering.rate_limit)
            if drops != self._drops:
                return 0  # the pace was given up meanwhile (a tune, a resume): take one anew
            if slot is None:
                return min(room, left)  # the pipe has no limit now, nor the job: no pace
            self._state.slot = slot
        if slot.start - LEAD > workflow.now():
            return 0
        return min(room, slot.items)

    async def _job_slot(self, items: int, rate: float) -> PaceSlot:
        items = min(items, self.chunk_items(rate))
        request = PaceRequest(pace=self._pace, items=items, rate=rate)
        start = await database(TAKE_PACE_SLOT, request, float)
        # The slot's own time, not the workflow's clock (which stands still while a task
        # runs): chunks keep to it by the same clock as every other slot of the job.
        return PaceSlot(start=datetime.fromtimestamp(start, UTC), rate=rate, items=items)

    async def _pipe_slot(self, items: int, rate: float | None) -> PaceSlot | None:
        if rate is not None:
            items = min(items, self.chunk_items(rate))
        request = PipeSlotRequest(
            pace=self._pace,
            pipe=self._context.target_pipe,
            items=items,
            rate=rate,
            seconds=SLOT_SECONDS,
        )
        slot = await database(TAKE_PIPE_SLOT, request, PipeSlot)
        if slot.rate is None:
            return None
        start = datetime.fromtimestamp(slot.start, UTC)
        return PaceSlot(start=start, rate=slot.rate, items=slot.items)

    @property
    def _pace(self) -> str:
        return job_pace(self._context.partition, self._context.job_id)

    def use(self, items: int) -> PaceSlot | None:
        """The slot a chunk of ``items`` sends in: the start of the slot taken; what it leaves
        is the next chunk's."""
        slot = self._state.slot
        if slot is None:
            return None
        used = min(items, slot.items)
        if used >= slot.items:
            self._state.slot = None
        else:
            self._state.slot = slot.model_copy(
                update={
                    "start": slot.start + timedelta(seconds=used / slot.rate),
                    "items": slot.items - used,
                }
            )
        return slot.model_copy(update={"items": used})

    def drop(self) -> None:
        """Forget the slot taken: the job's pace was given up (a new rate, a resume), and the
        batch takes one again."""
        self._state.slot = None
        self._drops += 1

    def wake_at(self, now: datetime) -> datetime | None:
        """When the batch must start its next chunk, for the slot it holds, if that is after
        ``now``: a slot that is due and waits for room (a chunk to end, a result to come
        back) is looked at again when that happens."""
        slot = self._state.slot
        if slot is None or slot.start - LEAD <= now:
            return None
        return slot.start - LEAD
