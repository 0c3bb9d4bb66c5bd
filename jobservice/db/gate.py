"""What a job's row says of its status, read at most a few times a second per process.

A pause or a cancel reaches each batch of the tree as a Temporal signal or cancellation, and a
busy worker takes a while to act on it. The row says Paused or Cancelled as soon as the call
returns, so a chunk that reads it between slices stops within a slice of that, and the
tracking consumer holds or drops a result it would have passed on, whatever the tree's depth
or the worker's load.
"""

from __future__ import annotations

import asyncio
import logging
import time

from jobservice.db.store import JobStore
from jobservice.jobs.status import JobStatus

GO_ON = (JobStatus.ACTIVE, JobStatus.WAITING)
_log = logging.getLogger(__name__)
_KNOWN_MOST = 10_000

Key = tuple[str, str]
Seen = tuple[JobStatus | None, int]
"""A job's status (None: it has no row) and the round its workflow runs (its redrives)."""


class JobGate:
    """A job's status from its row, cached for ``ttl`` seconds, one read at a time per job.

    Without a store, or while the database cannot be read, chunks go on: the signals that
    the workflows get still stop them.
    """

    def __init__(self, store: JobStore | None, *, ttl: float = 0.2) -> None:
        self._store = store
        self._ttl = ttl
        self._known: dict[Key, tuple[float, Seen]] = {}
        self._reading: dict[Key, asyncio.Future[Seen]] = {}
        self._warned = False

    async def stopped(self, partition_id: str, job_id: str) -> bool:
        """Whether the job's row says it is paused or has ended."""
        if self._store is None:
            return False
        try:
            status = await self.status(partition_id, job_id)
        except Exception as exc:  # the database is away: the signals still stop the job
            if not self._warned:
                _log.warning("cannot read job statuses, chunks go on until told: %s", exc)
                self._warned = True
            return False
        return status is not None and status not in GO_ON

    async def status(
        self, partition_id: str, job_id: str, *, fresh: bool = False
    ) -> JobStatus | None:
        """The job's status as its row says, at most ``ttl`` old unless ``fresh``; None when it
        has no row. Raises what the database raises."""
        return (await self.seen(partition_id, job_id, fresh=fresh))[0]

    async def seen(self, partition_id: str, job_id: str, *, fresh: bool = False) -> Seen:
        """The job's status and round as its row says, read as :meth:`status` reads them."""
        key = (partition_id, job_id)
        known = self._known.get(key)
        if not fresh and known is not None and time.monotonic() - known[0] < self._ttl:
            return known[1]
        reading = self._reading.get(key)
        if reading is None or fresh:  # one read for all that ask meanwhile
            reading = asyncio.ensure_future(self._read(key))
            self._reading[key] = reading
            reading.add_done_callback(lambda done: self._forget_reading(key, done))
        return await asyncio.shield(reading)

    def last_seen(self, partition_id: str, job_id: str) -> Seen | None:
        """What the job's row said when it was last read, however long ago; None if never."""
        known = self._known.get((partition_id, job_id))
        return None if known is None else known[1]

    def _forget_reading(self, key: Key, done: asyncio.Future[Seen]) -> None:
        if self._reading.get(key) is done:
            del self._reading[key]
        if not done.cancelled():
            done.exception()  # read here, so that a failed read nobody awaited is not logged

    async def _read(self, key: Key) -> Seen:
        if self._store is None:
            raise RuntimeError("no job database to read statuses from")
        seen = await asyncio.to_thread(self._store.seen, partition_id=key[0], job_id=key[1])
        now = time.monotonic()
        if len(self._known) > _KNOWN_MOST:
            self._known = {k: v for k, v in self._known.items() if now - v[0] < self._ttl}
        self._known[key] = (now, seen)
        return seen
