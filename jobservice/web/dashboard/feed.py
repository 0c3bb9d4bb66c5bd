"""Live job snapshots for every open dashboard page, read once per interval whatever their number.

A page names the jobs it shows; the feed reads all the jobs any page watches in one go per
interval (one query per partition), keeps a short history of each one's rate for the charts,
and hands each page the snapshots of its own jobs that changed. A thousand pages on one
running job cost the database what one does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobservice.db.query import JobQuery
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService

T = TypeVar("T")
HISTORY = 180
"""Rate samples kept per job: three minutes at one a second."""
_log = logging.getLogger(__name__)
_WARN_SECONDS = 60.0
"""The least time between two warnings of one partition's failing reads."""
_FORGET_SECONDS = 600.0
"""A job nobody has watched for this long loses its rate history."""


@dataclass(frozen=True, order=True)
class JobKey:
    partition: str
    job_id: str

    @classmethod
    def parse(cls, text: str) -> JobKey:
        """``partition/jobId``: neither may hold a ``/``."""
        partition, _, job_id = text.partition("/")
        return cls(partition, job_id)

    def __str__(self) -> str:
        return f"{self.partition}/{self.job_id}"


@dataclass(frozen=True)
class Snapshot:
    """A job as last read (None: it is gone), with its rate over the last minutes."""

    job: JobView | None
    rates: tuple[float, ...] = ()


@dataclass(eq=False)
class _Watcher:
    keys: frozenset[JobKey]
    changed: set[JobKey] = field(default_factory=set)
    ticked: asyncio.Event = field(default_factory=asyncio.Event)


class JobFeed:
    """Snapshots of the jobs open pages watch, each read at most once per ``interval``."""

    def __init__(self, service: JobService, *, interval: float = 1.0) -> None:
        self._service = service
        self._interval = interval
        self._watchers: set[_Watcher] = set()
        self._snapshots: dict[JobKey, Snapshot] = {}
        self._rates: dict[JobKey, deque[float]] = {}
        self._seen: dict[JobKey, float] = {}
        self._shared: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._warned: dict[str, float] = {}

    async def watch(self, keys: Collection[JobKey]) -> AsyncIterator[dict[JobKey, Snapshot]]:
        """The snapshots of ``keys`` (those known at once, then the rest, and finished jobs
        read anew), then each interval those that changed: an empty dict when none did, so a
        stream can also keep time."""
        watcher = _Watcher(frozenset(keys))
        self._watchers.add(watcher)
        self._start()
        try:
            # A finished job may run again (a redrive): its last snapshot is read anew first.
            known = {
                key: snapshot
                for key in watcher.keys
                if (snapshot := self._snapshots.get(key)) is not None
                and not (snapshot.job is not None and snapshot.job.status.is_terminal)
            }
            watcher.changed.update(watcher.keys - known.keys())
            if known:
                yield known
            while True:
                await watcher.ticked.wait()
                watcher.ticked.clear()
                changed, watcher.changed = watcher.changed, set()
                yield {key: self._snapshots[key] for key in changed if key in self._snapshots}
        finally:
            self._watchers.discard(watcher)

    def known(self, key: JobKey) -> Snapshot | None:
        """The job's last snapshot, if some page watched it lately: a page opened again
        shows the rate history at once."""
        return self._snapshots.get(key)

    async def status_counts(self, query: JobQuery) -> dict[JobStatus, int]:
        """``JobService.status_counts``, shared by every page asking the same within an
        interval."""
        return await self.shared(("status_counts", query), self._service.status_counts, query)

    async def find(self, query: JobQuery) -> list[JobView]:
        """``JobService.find``, shared likewise: open lists that refresh together on the
        same filters read their page once."""
        return await self.shared(("find", query), self._service.find, query)

    async def count(self, query: JobQuery) -> int:
        return await self.shared(("count", query), self._service.count, query)

    async def shared(
        self, key: Hashable, read: Callable[[JobQuery], Awaitable[T]], query: JobQuery
    ) -> T:
        """``read(query)``, once per interval for everyone asking under ``key``."""
        now = time.monotonic()
        cached = self._shared.get(key)
        if cached is None or now - cached[0] >= self._interval:
            cached = (now, asyncio.ensure_future(read(query)))
            self._shared[key] = cached
            for old in [k for k, (at, _) in self._shared.items() if now - at > 60]:
                del self._shared[old]
        answer: T = await asyncio.shield(cached[1])
        return answer

    def _start(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run(), name="dashboard-feed")

    async def _run(self) -> None:
        while self._watchers:
            started = time.monotonic()
            keys = set().union(*(watcher.keys for watcher in self._watchers))
            try:
                self._publish(await self._read(keys), started)
                self._forget(started)
            except Exception:  # no page may stop for good: they all go on next time
                _log.exception("the dashboard's feed failed a round")
            for watcher in list(self._watchers):
                watcher.ticked.set()
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))

    async def _read(self, keys: set[JobKey]) -> dict[JobKey, JobView | None]:
        """The jobs of ``keys`` (None: gone). A partition whose read fails is left out, its
        jobs as last read: one bad read must not stop every page, nor say a job is gone."""
        by_partition: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            by_partition[key.partition].append(key.job_id)
        found: dict[JobKey, JobView | None] = {}
        for partition, job_ids in by_partition.items():
            try:
                jobs = await self._service.get_many(job_ids, partition=partition)
            except Exception as exc:
                if time.monotonic() - self._warned.get(partition, -_WARN_SECONDS) >= _WARN_SECONDS:
                    self._warned[partition] = time.monotonic()
                    _log.warning("the dashboard cannot read jobs of %r: %s", partition, exc)
                continue
            found.update(dict.fromkeys(JobKey(partition, job_id) for job_id in job_ids))
            found.update((JobKey(partition, job.id), job) for job in jobs)
        return found

    def _publish(self, jobs: dict[JobKey, JobView | None], now: float) -> None:
        for key, job in jobs.items():
            self._seen[key] = now
            rates = self._rates.setdefault(key, deque(maxlen=HISTORY))
            if job is not None and not job.status.is_terminal:
                rates.append(job.items_per_second or 0.0)
            snapshot = Snapshot(job, tuple(rates))
            if snapshot != self._snapshots.get(key):
                self._snapshots[key] = snapshot
                for watcher in self._watchers:
                    if key in watcher.keys:
                        watcher.changed.add(key)

    def _forget(self, now: float) -> None:
        for key in [key for key, at in self._seen.items() if now - at > _FORGET_SECONDS]:
            del self._seen[key]
            self._snapshots.pop(key, None)
            self._rates.pop(key, None)
