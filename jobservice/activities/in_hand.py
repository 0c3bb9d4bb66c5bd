"""The items this worker process has handed to item handlers, per job, told to the job
database while there are any: so that a job's ``inFlight`` is what is being handled, not
every item of its scheduled chunks.

A chunk of a ``local:`` job hands one item at a time to its handler; only the worker knows
whether a chunk is running or still waits for a slot. Counting happens on the event loop and
costs nothing per item; one write a second (at most) replaces this worker's rows, and one
more after the last item is settled clears them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Iterator

from jobservice.db.in_hand import report_in_hand
from jobservice.db.rows import JobKey, now_millis
from jobservice.db.store import JobStore

REPORT_SECONDS = 1.0
"""How often this worker's rows are refreshed while it has items in hand."""

_log = logging.getLogger(__name__)


class ItemsInHand:
    """Counts items in handlers' hands by job, and keeps this worker's rows of them current."""

    def __init__(self, store: JobStore | None, *, interval: float = REPORT_SECONDS) -> None:
        self._store = store
        self._interval = interval
        self.worker_id = uuid.uuid4().hex
        self._counts: Counter[JobKey] = Counter()
        self._reporter: asyncio.Task[None] | None = None
        self._warned = False

    @property
    def counts(self) -> dict[JobKey, int]:
        """Items in hand by job; a job with none is not there."""
        return dict(self._counts)

    @contextlib.contextmanager
    def holding(self, key: JobKey, items: int = 1) -> Iterator[None]:
        """``items`` of job ``key`` are in a handler's hands for the length of the block."""
        self._counts[key] += items
        if self._store is not None and (self._reporter is None or self._reporter.done()):
            self._reporter = asyncio.get_running_loop().create_task(self._report())
        try:
            yield
        finally:
            self._counts[key] -= items
            if self._counts[key] <= 0:
                del self._counts[key]

    async def close(self) -> None:
        """Stop reporting, and clear this worker's rows: a worker that has stopped handles
        nothing, and the one that takes its chunks over counts them from now on."""
        reporter, self._reporter = self._reporter, None
        if reporter is None:
            return
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
        self._counts.clear()
        await self._write({})

    async def _report(self) -> None:
        """Write the counts until none are left, then once more to clear this worker's rows."""
        while True:
            counts = self.counts
            await self._write(counts)
            if not counts and not self._counts:
                return
            await asyncio.sleep(self._interval)

    async def _write(self, counts: dict[JobKey, int]) -> None:
        assert self._store is not None
        try:
            await asyncio.to_thread(
                report_in_hand,
                self._store.engine,
                worker_id=self.worker_id,
                items=counts,
                now=now_millis(),
            )
        except Exception as exc:  # the database is away: in flight is a figure, not the work
            if not self._warned:
                _log.warning("cannot write the items this worker has in hand: %s", exc)
                self._warned = True
