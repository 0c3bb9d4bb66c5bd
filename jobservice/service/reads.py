"""Reading jobs: one, many, a page of a query, counts, dependents, the batch tree, and a job's
changes until it ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from jobservice.db.query import JobQuery
from jobservice.db.store import JobStore
from jobservice.db.tables import JobRow
from jobservice.errors import InvalidRequestError
from jobservice.execution.batch import BatchesRequest, BatchPage
from jobservice.jobs.ids import validate_ids
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.service.reader import JobReader
from jobservice.temporal.orchestration import JobWorkflows

MAX_BATCH_PAGE = 500
"""The most running child batches one page of the batch tree lists."""


class JobReads:
    """What the service reads: rows through the job database and its reader, a job's batches
    through its workflows."""

    def __init__(self, store: JobStore, reader: JobReader, workflows: JobWorkflows) -> None:
        self._store = store
        self._reader = reader
        self._workflows = workflows

    async def get(self, job_id: str, *, partition: str) -> JobView:
        """The job as :meth:`JobReader.get` reads it."""
        return await self._reader.get(job_id, partition=partition)

    async def row(self, partition: str, job_id: str) -> Mapping[str, Any]:
        """The job's row as it is stored; ids checked, and a missing job is a 404."""
        return await self._reader.row(partition, job_id)

    async def definition(self, job_id: str, *, partition: str) -> dict[str, Any]:
        """The job as it was submitted, in the API's JSON."""
        row = await self._reader.row(partition, job_id)
        return dict(row["definition"])

    async def get_many(self, job_ids: Sequence[str], *, partition: str) -> list[JobView]:
        """The jobs of ``job_ids`` that exist, read in one go."""
        validate_ids(partition)
        for job_id in job_ids:
            validate_ids(partition, job_id)
        return await self._viewed(
            lambda: self._store.get_many(partition_id=partition, job_ids=job_ids)
        )

    async def find(self, query: JobQuery) -> list[JobView]:
        """The page of jobs a query of the list endpoint selects."""
        return await self._viewed(lambda: self._store.find(query))

    async def count(self, query: JobQuery) -> int:
        return await asyncio.to_thread(self._store.count, query)

    async def status_counts(self, query: JobQuery) -> dict[JobStatus, int]:
        """How many of the jobs ``query`` selects have each status."""
        return await asyncio.to_thread(self._store.status_counts, query)

    async def dependents(self, job_id: str, *, partition: str) -> list[str]:
        """The unfinished jobs that wait for this one: those naming it a prerequisite."""
        validate_ids(partition, job_id)
        return await asyncio.to_thread(
            self._store.dependents, partition_id=partition, job_id=job_id
        )

    async def latest(
        self, *, partition: str | None, status: JobStatus | None, limit: int
    ) -> list[JobView]:
        """Jobs, newest first."""
        if partition is not None:
            validate_ids(partition)
        return await self._viewed(
            lambda: self._store.latest(partition_id=partition, status=status, limit=limit)
        )

    async def _viewed(self, read: Callable[[], Sequence[JobRow]]) -> list[JobView]:
        """The views of the rows ``read`` reads, read with them on one thread."""

        def rows_and_views() -> list[JobView]:
            return self._reader.views_of([row.model_dump() for row in read()])

        return await self._reader.annotate(await asyncio.to_thread(rows_and_views))

    async def batches(
        self, job_id: str, *, partition: str, path: Sequence[int], offset: int, limit: int
    ) -> BatchPage | None:
        """A batch of the job's tree and a page of its running children; see
        :meth:`JobService.batches`."""
        if not 1 <= limit <= MAX_BATCH_PAGE:
            raise InvalidRequestError(f"limit {limit} is out of range: from 1 to {MAX_BATCH_PAGE}")
        if offset < 0:
            raise InvalidRequestError(f"offset {offset} is negative: the first batch is at 0")
        if any(index < 1 for index in path):
            raise InvalidRequestError(f"batch path {list(path)}: sub-batches count from 1")
        await self._reader.row(partition, job_id)  # ids checked, and the job exists
        request = BatchesRequest(offset=offset, limit=limit)
        return await self._workflows.batches(partition, job_id, path, request)

    async def watch(
        self, job_id: str, *, partition: str, interval: float
    ) -> AsyncIterator[JobView]:
        """Each change of the job's progress, ending with its terminal state."""
        last: str | None = None
        while True:
            job = await self.get(job_id, partition=partition)
            key = json.dumps([job.status, job.counts.model_dump(), len(job.failures)])
            if key != last:
                last = key
                yield job
            if job.status.is_terminal:
                return
            await asyncio.sleep(interval)
