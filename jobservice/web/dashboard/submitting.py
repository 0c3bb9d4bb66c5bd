"""The "Submit a job" page: a form per way of submitting, and the job a posted one makes."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobservice.errors import JobServiceError
from jobservice.jobs.status import DEFAULT_PARTITION
from jobservice.service.job_service import JobService
from jobservice.web.dashboard.forms import FormError, job_from_form, submit_form
from jobservice.web.dashboard.routing import ServiceDep, ViewerDep, dashboard_router, job_url, page
from jobservice.web.dashboard.viewer import Viewer
from jobservice.web.status import status_of

router = dashboard_router()
_INTERNAL = {"task"}
"""The batch type and builder that carry a task that is not a BatchWorker task: not offered."""


def _page(
    request: Request,
    service: JobService,
    viewer: Viewer,
    *,
    values: dict[str, str] | None = None,
    problem: JobServiceError | None = None,
) -> HTMLResponse:
    partitions = list(viewer.partitions or [DEFAULT_PARTITION])
    form = submit_form(service.registry, service.job_types, partitions)
    context: dict[str, Any] = {
        "form": form,
        "internal": _INTERNAL,
        "values": values or {},
        "chosen_type": (values or {}).get("type", ""),
        "free_partition": viewer.partitions is None,
        "problem": str(problem) if problem else "",
        "problems": problem.problems if isinstance(problem, FormError) else {},
    }
    return page(request, "submit.html", context, status=status_of(problem) if problem else 200)


@router.get("/submit", response_class=HTMLResponse)
async def submit_page(request: Request, service: ServiceDep, viewer: ViewerDep) -> HTMLResponse:
    return _page(request, service, viewer)


@router.post("/submit")
async def submit(request: Request, service: ServiceDep, viewer: ViewerDep) -> Response:
    """Submit the posted job and show its page; a refusal shows the form again, as filled in,
    with what to change beside each input."""
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    try:
        partition, job_id, job = job_from_form(form, service.job_types)
        viewer.check(partition)
        await service.submit(job_id, job, partition=partition)
    except JobServiceError as exc:
        return _page(request, service, viewer, values=values, problem=exc)
    return RedirectResponse(job_url(partition, job_id), status_code=303)
