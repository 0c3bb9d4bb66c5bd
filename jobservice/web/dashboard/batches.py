"""A job's batch tree on its page: a level at a time, a page of running batches at a time, so
that a tree of a million items shows as fast as one of ten."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse

from jobservice.errors import InvalidRequestError
from jobservice.jobs.taskids import workflow_id
from jobservice.web.dashboard.routing import ServiceDep, ViewerDep, dashboard_router, job_url, page

router = dashboard_router()
PAGE = 25
"""Running batches shown per page of a level."""


def _path(text: str) -> list[int]:
    """``2.5``: the fifth sub-batch of the second; empty for the job's root batch."""
    try:
        return [int(part) for part in text.split(".")] if text else []
    except ValueError:
        raise InvalidRequestError(f"path: {text!r} is not dot-separated batch numbers") from None


@router.get("/partitions/{partition_id}/jobs/{job_id}/batches", response_class=HTMLResponse)
async def batches(
    request: Request,
    service: ServiceDep,
    viewer: ViewerDep,
    partition_id: str,
    job_id: str,
    path: str = "",
    offset: int = 0,
) -> HTMLResponse:
    """One level of the job's tree: the batch at ``path``, and a page of its running
    children, each of which opens to its own level."""
    viewer.check(partition_id)
    at = _path(path)
    level = await service.batches(
        job_id, partition=partition_id, path=at, offset=offset, limit=PAGE
    )
    base = f"{job_url(partition_id, job_id)}/batches"
    context = {
        "level": level,
        "path": at,
        "offset": offset,
        "root": not at,
        "base": base,
        "dotted": lambda numbers: ".".join(map(str, numbers)),
        "workflow_of": lambda numbers: quote(workflow_id(partition_id, job_id, numbers), safe=""),
    }
    return page(request, "_batches.html", context)
