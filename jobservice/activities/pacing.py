"""A chunk of a rate-limited job keeps to the slot its batch took (``jobservice.db.pace``):
item k of the chunk goes no sooner than the slot's start plus k ÷ rate. A chunk that starts
late catches up, so the job's items go at its rate over any few seconds."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

from jobservice.execution.batch import PaceSlot

SLICE_SECONDS = 0.1
"""What a slice of a paced chunk holds of the rate: its items go together, then it waits."""


class ChunkPace:
    """The pace of one chunk; without a slot, none."""

    def __init__(self, slot: PaceSlot | None) -> None:
        self._slot = slot

    def slice_items(self, size: int) -> int:
        """The most items the next slice may hold, of ``size``."""
        if self._slot is None:
            return size
        return max(1, min(size, math.ceil(self._slot.rate * SLICE_SECONDS)))

    async def until(self, offset: int) -> None:
        """Wait until the item ``offset`` items into the chunk may go."""
        if self._slot is None:
            return
        due = self._slot.start.timestamp() + offset / self._slot.rate
        wait = due - datetime.now(UTC).timestamp()
        if wait > 0:
            await asyncio.sleep(wait)
