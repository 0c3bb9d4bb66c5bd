"""A chunk's failed items on their way to the failed-item ledger, a few writes a second at
most: a slice with a failure does not wait for the database before the next one starts.

What a chunk heartbeats is its result as far as the ledger holds its failures (``durable``):
a chunk retried after its worker died goes on from there, and sends again what it had not
written, so that no item it counts failed is missing from the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from jobservice.db.failures import FailedItem, FailureLedger
from jobservice.db.rows import JobKey
from jobservice.execution.batch import ChunkResult

WRITE_SECONDS = 1.0
"""The longest a chunk's failed items wait to be written, while it goes on."""
WRITE_ITEMS = 1_000
"""Failed (or in a redrive, completed) items that are written at once, however soon."""


class FailedItemsBuffer:
    """The failed items a chunk has not written yet, and its result as far as it has."""

    def __init__(
        self, ledger: FailureLedger, key: JobKey, round_: int, result: ChunkResult
    ) -> None:
        self._ledger = ledger
        self._key = key
        self._round = round_
        self.durable = result
        """The chunk's result as far as its failures are in the ledger."""
        self._result = result
        self._failed: list[FailedItem] = []
        self._completed: list[str] = []
        self._since = time.monotonic()

    def add(
        self, result: ChunkResult, failed: Sequence[FailedItem], completed: Sequence[str]
    ) -> None:
        """A slice's outcome: the chunk's result with it, its failed items and (in a redrive)
        the task ids of those that completed."""
        self._result = result
        self._failed += failed
        self._completed += completed
        if not self._failed and not self._completed:
            self.durable = result

    @property
    def due(self) -> bool:
        """Whether to write now: enough is waiting, or it has waited long enough."""
        waiting = len(self._failed) + len(self._completed)
        return bool(waiting) and (
            waiting >= WRITE_ITEMS or time.monotonic() - self._since >= WRITE_SECONDS
        )

    async def write(self) -> None:
        """Write what waits; the result so far is durable then."""
        failed, completed = self._failed, self._completed
        self._failed, self._completed = [], []
        await self._ledger.record(self._key, failed, round_=self._round)
        if completed:
            await self._ledger.complete(self._key, self._round, completed)
        self.durable = self._result
        self._since = time.monotonic()
