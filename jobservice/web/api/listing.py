"""A page of the job list bigger than one query: read and sent a query's worth at a time,
so that a client asking for ten million jobs gets them all, whole, in bounded memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from fastapi.responses import StreamingResponse

from jobservice.db.query import MAX_LIMIT, MAX_OFFSET, JobQuery
from jobservice.jobs.job import JobView
from jobservice.jobs.public import JobPublic

if TYPE_CHECKING:
    from jobservice.service.job_service import JobService


@dataclass(frozen=True)
class Page:
    """A page of the list: its query (of at most :data:`MAX_LIMIT` jobs) and how many jobs
    were asked for, which may be more."""

    query: JobQuery
    limit: int


def whole_page(service: JobService, page: Page, first: Sequence[JobView]) -> StreamingResponse:
    """The answer to ``page``, whose ``first`` query's jobs are read already."""
    return StreamingResponse(_streamed(service, page, first), media_type="application/json")


async def _streamed(
    service: JobService, page: Page, first: Sequence[JobView]
) -> AsyncIterator[bytes]:
    """The jobs of a page bigger than one query, as a JSON array, a query's worth at a time."""
    yield b"["
    jobs, query, sent = first, page.query, 0
    while True:
        for job in jobs:
            text = JobPublic.of(job).model_dump_json(by_alias=True)
            yield (b"," if sent else b"") + text.encode()
            sent += 1
        left = page.limit - sent
        if len(jobs) < query.limit or left <= 0 or query.offset + query.limit > MAX_OFFSET:
            break
        query = replace(query, offset=query.offset + query.limit, limit=min(left, MAX_LIMIT))
        jobs = await service.find(query)
    yield b"]"
