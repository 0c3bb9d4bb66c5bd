"""Whether a job's chunks may go on: what its row says, read at most a few times a second.

A pause or a cancel reaches each batch of the tree as a Temporal signal or cancellation, and a
busy worker takes a while to act on it. The row says Paused or Cancelled as soon as the call
returns, so a chunk that reads it between slices stops within a slice of that, whatever the
tree's depth or the worker's load.
"""

from __future__ import annotations

import asyncio
import logging
import time

from jobservice.db.store import JobStore
from jobservice.jobs.status import JobStatus

GO_ON = (JobStatus.ACTIVE, JobStatus.WAITING)
_log = logging.getLogger(__name__)


class JobGate:
    """Answers whether a job's chunks must stop, from its row, cached for ``ttl`` seconds.

    Without a store, or while the database cannot be read, chunks go on: the signals that
    the workflows get still stop them.
    """

    def __init__(self, store: JobStore | None, *, ttl: float = 0.2) -> None:
        self._store = store
        self._ttl = ttl
        self._known: dict[tuple[str, str], tuple[float, bool]] = {}
        self._reading: dict[tuple[str, str], asyncio.Future[bool]] = {}
        self._warned = False

    async def stopped(self, partition_id: str, job_id: str) -> bool:
        """Whether the job's row says it is paused or has ended."""
        if self._store is None:
            return False
        key = (partition_id, job_id)
        known = self._known.get(key)
        if known is not None and time.monotonic() - known[0] < self._ttl:
            return known[1]
        reading = self._reading.get(key)
        if reading is None:  # one read for all the chunks of the job that ask meanwhile
            reading = asyncio.ensure_future(self._read(key))
            self._reading[key] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        return await asyncio.shield(reading)

    async def _read(self, key: tuple[str, str]) -> bool:
        assert self._store is not None
        try:
            status = await asyncio.to_thread(
                self._store.status_of, partition_id=key[0], job_id=key[1]
            )
        except Exception as exc:  # the database is away: the signals still stop the job
            if not self._warned:
                _log.warning("cannot read job statuses, chunks go on until told: %s", exc)
                self._warned = True
            return False
        stopped = status is not None and status not in GO_ON
        now = time.monotonic()
        if len(self._known) > 10_000:
            self._known = {k: v for k, v in self._known.items() if now - v[0] < self._ttl}
        self._known[key] = (now, stopped)
        return stopped
