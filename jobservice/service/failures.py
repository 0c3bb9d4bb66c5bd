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

    async def page(self, job_id: str, *, partition: str, limit: int, offset: int) -> FailurePage:
        """Failures ``offset`` to ``offset + limit`` of the job, and how many it has."""
        if not 1 <= limit <= FAILURE_PAGE_MOST:
            raise InvalidRequestError(
                f"limit {limit} is out of range: from 1 to {FAILURE_PAGE_MOST}"
            )
        if offset < 0:
            raise InvalidRequestError(f"offset {offset} is negative: the first failure is at 0")
        await self._reader.row(partition, job_id)  # ids checked, and the job exists
        engine, key = self._store.engine, (partition, job_id)
        total = await asyncio.to_thread(failures.failed_total, engine, key)
        items = await asyncio.to_thread(
            failures.failed_page, engine, key, limit=limit, offset=offset
        )
        return FailurePage(total=total, failures=[_public(item) for item in items])

    async def stream(self, job_id: str, *, partition: str) -> AsyncIterator[Failure]:
        """Every failure of the job, read a page at a time."""
        await self._reader.row(partition, job_id)
        pages = failures.failed_pages(self._store.engine, (partition, job_id), page=STREAM_PAGE)
        while page := await asyncio.to_thread(next, pages, None):
            for item in page:
                yield _public(item)


def _public(item: failures.FailedItem) -> Failure:
    return Failure.of(item.failure())
