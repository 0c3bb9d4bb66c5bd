"""A job's failed items on its page: every one, a page at a time, from the job database's
failed-item ledger, however many there are."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from jobservice.web.dashboard.routing import ServiceDep, ViewerDep, dashboard_router, job_url, page

router = dashboard_router()
PAGE = 50
"""Failed items shown per page."""


@router.get("/partitions/{partition_id}/jobs/{job_id}/failures", response_class=HTMLResponse)
async def failed_items(
    request: Request,
    service: ServiceDep,
    viewer: ViewerDep,
    partition_id: str,
    job_id: str,
    offset: int = 0,
) -> HTMLResponse:
    """A page of the job's failed items, with how many there are and the way to the others."""
    viewer.check(partition_id)
    failures = await service.failures(
        job_id, partition=partition_id, limit=PAGE, offset=max(0, offset)
    )
    context = {
        "failures": failures,
        "offset": max(0, offset),
        "size": PAGE,
        "base": f"{job_url(partition_id, job_id)}/failures",
    }
    return page(request, "_failed_items.html", context)
