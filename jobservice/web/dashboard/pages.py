"""The dashboard's pages: the jobs list, bulk actions, a job's page and its buttons, sign-in."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobservice.errors import InvalidRequestError
from jobservice.service.bulk import BulkAction
from jobservice.web.dashboard.bulkruns import BulkRun
from jobservice.web.dashboard.feed import JobKey
from jobservice.web.dashboard.inputs import steering_value
from jobservice.web.dashboard.listing import PAGE_SIZES, SORTS, ListFilters
from jobservice.web.dashboard.routing import (
    PREFIX,
    BulkRunsDep,
    FeedDep,
    ServiceDep,
    ViewerDep,
    dashboard_router,
    error_page,
    job_url,
    page,
)
from jobservice.web.dashboard.viewer import KEY_COOKIE, Viewer
from jobservice.web.security import NotAuthenticatedError, key_partitions

router = dashboard_router()
WAIT_SECONDS = 5.0
"""How long a bulk action's request waits for it to end before showing its progress."""


async def _jobs_context(request: Request, feed: FeedDep, viewer: Viewer) -> dict[str, Any]:
    filters = ListFilters.of(request.query_params)
    matching, counts = await asyncio.gather(
        feed.count(filters.query(viewer, paged=False)), feed.status_counts(viewer.query())
    )
    pages = max(1, -(-matching // filters.size))
    if filters.page > pages:  # a page past the end (jobs went meanwhile): the last one
        filters = replace(filters, page=pages)
    jobs = await feed.find(filters.query(viewer))
    return {
        "filters": filters,
        "jobs": jobs,
        "matching": matching,
        "pages": pages,
        "counts": counts,
        "total": sum(counts.values()),
        "sorts": SORTS,
        "sizes": PAGE_SIZES,
    }


@router.get("", response_class=HTMLResponse)
async def jobs_page(request: Request, feed: FeedDep, viewer: ViewerDep) -> HTMLResponse:
    """Every job the viewer may see, newest first, filtered, live."""
    return page(request, "jobs.html", await _jobs_context(request, feed, viewer))


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_table(request: Request, feed: FeedDep, viewer: ViewerDep) -> HTMLResponse:
    """The list's table alone, as the page refreshes it when jobs come and go."""
    return page(request, "_jobs_table.html", await _jobs_context(request, feed, viewer))


@router.get("/bulk", response_class=HTMLResponse)
async def bulk_preview(request: Request, service: ServiceDep, viewer: ViewerDep) -> HTMLResponse:
    """What a bulk action would touch, before it does: how many jobs, of which statuses."""
    action = _action(request.query_params.get("action", ""))
    filters = ListFilters.of(request.query_params)
    counts = await service.status_counts(filters.query(viewer, paged=False))
    context = {"action": action, "filters": filters, "counts": counts, "report": None}
    return page(request, "bulk.html", {**context, "matching": sum(counts.values())})


@router.post("/bulk")
async def bulk_apply(request: Request, runs: BulkRunsDep, viewer: ViewerDep) -> Response:
    """Start the bulk action; its result at once if it ends within moments, else the page
    that follows it."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    action = _action(form.get("action", ""))
    filters = ListFilters.of(form)
    run = runs.start(filters.query(viewer, paged=False), action, viewer.partitions)
    assert run.task is not None
    await asyncio.wait({run.task}, timeout=WAIT_SECONDS)
    if not run.done:
        return RedirectResponse(f"{PREFIX}/bulk/runs/{run.id}", status_code=303)
    return _run_page(request, run, filters)


@router.get("/bulk/runs/{run_id}", response_class=HTMLResponse)
async def bulk_run(
    request: Request, runs: BulkRunsDep, viewer: ViewerDep, run_id: str
) -> HTMLResponse:
    run = runs.get(run_id, viewer.partitions)
    if run is None:
        return error_page(
            request,
            404,
            "this API process runs no such bulk action: it ended over an hour ago, or runs on"
            " another replica of the API (route a user to one replica, or look at the jobs list)",
        )
    return _run_page(request, run, ListFilters())


def _run_page(request: Request, run: BulkRun, filters: ListFilters) -> HTMLResponse:
    context = {"action": run.action, "filters": filters, "counts": {}, "run": run}
    return page(request, "bulk.html", {**context, "report": run.report, "matching": run.selected})


def _action(name: str) -> BulkAction:
    try:
        return BulkAction(name)
    except ValueError:
        known = ", ".join(action.value for action in BulkAction)
        raise InvalidRequestError(f"action: {name!r} is not one of {known}") from None


@router.get("/partitions/{partition_id}/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(
    request: Request,
    service: ServiceDep,
    feed: FeedDep,
    viewer: ViewerDep,
    partition_id: str,
    job_id: str,
) -> HTMLResponse:
    """One job: its counts, rate, failures, neighbours, definition and batch tree."""
    viewer.check(partition_id)
    job = await service.get(job_id, partition=partition_id)
    definition, dependents = await asyncio.gather(
        service.definition(job_id, partition=partition_id),
        service.dependents(job_id, partition=partition_id),
    )
    known = feed.known(JobKey(partition_id, job_id))
    context = {
        "job": job,
        "rates": known.rates if known is not None else (),
        "dependents": dependents,
        "prerequisites": definition.get("prerequisiteJobIds") or [],
        "definition": json.dumps(definition, indent=2, ensure_ascii=False),
        "message": request.query_params.get("done", ""),
    }
    return page(request, "job.html", context)


_CONTROLS = ("pause", "resume", "cancel", "redrive")
_STEERING = ("rateLimit", "inFlightWindow", "failureTolerance", "priority")


@router.post("/partitions/{partition_id}/jobs/{job_id}/tune")
async def job_tune(
    request: Request, service: ServiceDep, viewer: ViewerDep, partition_id: str, job_id: str
) -> Response:
    """Steer the job as its form says (an empty field: the default), then back to its page."""
    viewer.check(partition_id)
    form = await request.form()
    patch = {name: steering_value(name, form.get(name)) for name in _STEERING if name in form}
    await service.tune(job_id, patch, partition=partition_id)
    return RedirectResponse(f"{job_url(partition_id, job_id)}?done=tuned", status_code=303)


@router.post("/partitions/{partition_id}/jobs/{job_id}/{verb}")
async def job_control(
    request: Request,
    service: ServiceDep,
    viewer: ViewerDep,
    partition_id: str,
    job_id: str,
    verb: str,
) -> Response:
    """Pause, resume, cancel, redrive or delete the job, then back to its page (or the
    list)."""
    viewer.check(partition_id)
    if verb == "delete":
        await service.delete(job_id, partition=partition_id)
        return RedirectResponse(f"{PREFIX}?{urlencode({'deleted': job_id})}", status_code=303)
    if verb not in _CONTROLS:
        return error_page(request, 404, f"a job cannot be told to {verb!r}")
    await getattr(service, verb)(job_id, partition=partition_id)
    done = "redriven" if verb == "redrive" else BulkAction(verb).done_word
    return RedirectResponse(f"{job_url(partition_id, job_id)}?done={done}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return page(request, "login.html", {"next": _next(request.query_params.get("next"))})


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request, key: Annotated[str, Form()], next: Annotated[str, Form()] = PREFIX
) -> Response:
    """Keep a known API key in a cookie only this site's own requests send back."""
    try:
        key_partitions(request.app.state.settings.api, key.strip())
    except NotAuthenticatedError:
        context = {"next": _next(next), "problem": "That API key is not known."}
        return page(request, "login.html", context, status=401)
    response = RedirectResponse(_next(next), status_code=303)
    response.set_cookie(
        KEY_COOKIE,
        key.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=PREFIX,
        max_age=86400 * 7,
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(KEY_COOKIE, path=PREFIX)
    return response


def _next(target: str | None) -> str:
    """Where to go after signing in: a dashboard page, never another site."""
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return PREFIX
