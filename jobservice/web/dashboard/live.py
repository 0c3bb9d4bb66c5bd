"""Server-sent events that keep the dashboard's pages live without a reload.

Each message names page elements by id with their new HTML, rendered here from the same
templates the page was. The jobs come from the app's :class:`JobFeed`, so any number of open
pages costs one read per watched job per interval. A stream ends after a few minutes, and at
once when the API stops; the browser opens it again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import Query, Request
from fastapi.responses import StreamingResponse

from jobservice.jobs.ids import validate_ids
from jobservice.web.dashboard.feed import JobFeed, JobKey, Snapshot
from jobservice.web.dashboard.rendering import templates
from jobservice.web.dashboard.routing import FeedDep, ViewerDep, dashboard_router, shared_context

router = dashboard_router()

STREAM_SECONDS = 300.0
"""How long one stream lasts before the browser is asked to open a new one."""
STALE_SECONDS = 5.0
"""The least time between two refreshes of the list's table when jobs come and go."""
_MAX_KEYS = 100
_JOB_PARTS = ("job-summary", "job-controls", "job-chart", "job-failures")


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


class _Parts:
    """Parts of pages, rendered as the page around them was."""

    def __init__(self, request: Request) -> None:
        self._shared = shared_context(request)

    def render(self, template: str, **context: Any) -> str:
        html: str = templates.get_template(template).render(**self._shared, **context)
        return html


def _streamed(request: Request, events: AsyncGenerator[str]) -> StreamingResponse:
    closing: asyncio.Event = request.app.state.closing

    async def stream() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        deadline = time.monotonic() + STREAM_SECONDS
        async with contextlib.aclosing(events):  # its watcher leaves the feed at once
            async for event in events:
                yield event
                if closing.is_set() or time.monotonic() > deadline:
                    break

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/events/jobs")
async def list_events(
    request: Request,
    feed: FeedDep,
    viewer: ViewerDep,
    key: list[str] = Query(default=[]),
) -> StreamingResponse:
    """The rows of the jobs a list page shows, and its counters; ``stale`` when jobs came,
    went or changed status, so that the page fetches its table again."""
    keys = [JobKey.parse(text) for text in key[:_MAX_KEYS]]
    for job in keys:
        validate_ids(job.partition, job.job_id)
        viewer.check(job.partition)
    return _streamed(request, _list_events(_Parts(request), feed, keys, viewer.query()))


async def _list_events(
    parts_of: _Parts, feed: JobFeed, keys: list[JobKey], scope: Any
) -> AsyncGenerator[str]:
    counts = await feed.status_counts(scope)
    stale_at = 0.0
    async for changed in feed.watch(keys):
        parts = {
            f"job-row-{key}": parts_of.render("_job_row.html", job=snapshot.job)
            for key, snapshot in changed.items()
            if snapshot.job is not None
        }
        now_counts = await feed.status_counts(scope)
        if now_counts != counts:
            parts["job-counters"] = parts_of.render(
                "_counters.html", counts=now_counts, total=sum(now_counts.values())
            )
        if parts:
            yield _event("parts", parts)
        gone = any(snapshot.job is None for snapshot in changed.values())
        if (now_counts != counts or gone) and time.monotonic() - stale_at > STALE_SECONDS:
            stale_at = time.monotonic()
            counts = now_counts
            yield _event("stale", {})
        elif not parts:
            yield ": tick\n\n"


@router.get("/partitions/{partition_id}/jobs/{job_id}/events")
async def job_events(
    request: Request, feed: FeedDep, viewer: ViewerDep, partition_id: str, job_id: str
) -> StreamingResponse:
    """The job page's live parts: summary, buttons, rate chart and failures; ``end`` once
    the job has finished (or is gone)."""
    viewer.check(partition_id)
    return _streamed(request, _job_events(_Parts(request), feed, JobKey(partition_id, job_id)))


async def _job_events(parts_of: _Parts, feed: JobFeed, key: JobKey) -> AsyncGenerator[str]:
    async for changed in feed.watch([key]):
        snapshot: Snapshot | None = changed.get(key)
        if snapshot is None:
            yield ": tick\n\n"
            continue
        if snapshot.job is None:
            yield _event("end", {"gone": True})
            return
        parts = {
            part: parts_of.render(
                f"_{part.replace('-', '_')}.html", job=snapshot.job, rates=snapshot.rates
            )
            for part in _JOB_PARTS
        }
        yield _event("parts", parts)
        if snapshot.job.status.is_terminal:
            yield _event("end", {"status": snapshot.job.status.value})
            return
