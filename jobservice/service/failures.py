"""Reading a job's failed items from the ledger: a page of them, or every one, streamed a page
at a time so that tens of thousands never sit in memory at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from jobservice.db import failures
from jobservice.db.store import JobStore
from jobservice.errors import InvalidRequestError
from jobservice.jobs.public import FAILURE_PAGE_MOST, Failure, FailurePage
from jobservice.service.reader import JobReader

STREAM_PAGE = 2_000
"""Failures read from the database at a time while streaming them all."""


class FailureReads:
    """A job's failed items, in the order they were recorded."""

    def __init__(self, store: JobStore, reader: JobReader) -> None:
        self._store = store
        self._reader = reader

    async def _round(self, job_id: str, partition: str, round_: int | None) -> int:
        """The round asked for, or the job's last; the job must exist."""
        row = await self._reader.row(partition, job_id)  # ids checked, and the job exists
        last = int(row.get("redrive_count") or 0)
        if round_ is None:
            return last
        if not 0 <= round_ <= last:
            raise InvalidRequestError(
                f"round {round_} is out of range: job {job_id!r} has rounds 0 (its first run) "
                f"to {last}"
            )
        return round_

    async def page(
        self, job_id: str, *, partition: str, limit: int, offset: int, round_: int | None = None
    ) -> FailurePage:
        """Failures ``offset`` to ``offset + limit`` of the job's last round (or ``round_``),
        and how many it has."""
        if not 1 <= limit <= FAILURE_PAGE_MOST:
            raise InvalidRequestError(
                f"limit {limit} is out of range: from 1 to {FAILURE_PAGE_MOST}"
            )
        if offset < 0:
            raise InvalidRequestError(f"offset {offset} is negative: the first failure is at 0")
        round_ = await self._round(job_id, partition, round_)
        engine, key = self._store.engine, (partition, job_id)
        total = await asyncio.to_thread(failures.failed_total, engine, key, round_=round_)
        items = await asyncio.to_thread(
            failures.failed_page, engine, key, round_=round_, limit=limit, offset=offset
        )
        return FailurePage(total=total, failures=[_public(item) for item in items])

    async def stream(
        self, job_id: str, *, partition: str, round_: int | None = None
    ) -> AsyncIterator[Failure]:
        """Every failure of the job's last round (or ``round_``), read a page at a time."""
        round_ = await self._round(job_id, partition, round_)
        pages = failures.failed_pages(
            self._store.engine, (partition, job_id), round_=round_, page=STREAM_PAGE
        )
        while page := await asyncio.to_thread(next, pages, None):
            for item in page:
                yield _public(item)


def _public(item: failures.FailedItem) -> Failure:
    return Failure.of(item.failure())
