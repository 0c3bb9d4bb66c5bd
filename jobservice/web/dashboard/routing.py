"""What every dashboard route shares: the service, the viewer, pages for errors."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from jobservice.errors import JobServiceError
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from jobservice.web.dashboard.bulkruns import BulkRuns
from jobservice.web.dashboard.feed import JobFeed
from jobservice.web.dashboard.rendering import templates
from jobservice.web.dashboard.viewer import LoginRequiredError, Viewer, viewer_of
from jobservice.web.deps import ServiceDep as ServiceDep
from jobservice.web.status import status_of

PREFIX = "/dashboard"


class DashboardRoute(APIRoute):
    """A dashboard route answers a refusal with a page a person can read: a sign-in page
    when a key is needed, otherwise the error's message and a way back."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answered(request: Request) -> Response:
            if request.method == "POST" and not same_origin(request):
                return error_page(
                    request, 403, "this form was sent from another site; use it from the dashboard"
                )
            try:
                return await handler(request)
            except LoginRequiredError as exc:
                if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                    target = quote(request.url.path + _query(request), safe="/")
                    return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
                return error_page(request, 401, str(exc))
            except JobServiceError as exc:
                return error_page(request, status_of(exc), str(exc))

        return answered


def same_origin(request: Request) -> bool:
    """Whether a form post comes from the dashboard's own pages, as the browser says (its
    Sec-Fetch-Site, else its Origin): a page of another site must not pause, cancel or delete
    jobs through a user's browser, with or without API keys. A client that is no browser sends
    neither header, and is let through."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    # Behind a proxy that rewrites Host, the host the browser asked for is the forwarded one.
    asked = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    return _authority(origin) in {_authority(f"//{host}") for host in asked if host}


def _authority(url: str) -> str:
    """Host and port of a URL, the scheme's default port left out: ``jobs:443`` is ``jobs``."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    # A Host header has no scheme: either default port may be left out of its Origin.
    defaults = (default,) if default else (80, 443)
    return host if port is None or port in defaults else f"{host}:{port}"


def dashboard_router() -> APIRouter:
    """A router of dashboard pages: under the prefix, out of the API's document."""
    return APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return page(request, "error.html", {"status": status, "message": message}, status=status)


def page(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    """``template`` rendered with ``context`` and what every page needs."""
    return templates.TemplateResponse(
        request, template, {**shared_context(request), **context}, status_code=status
    )


def shared_context(request: Request) -> dict[str, Any]:
    """The viewer and the links every page and part of a page needs."""
    settings: Settings = request.app.state.settings
    try:
        viewer: Viewer | None = viewer_of(request)
    except LoginRequiredError:
        viewer = None
    return {
        "prefix": PREFIX,
        "viewer": viewer,
        "temporal_ui": settings.temporal.ui_url,
        "namespace": settings.temporal.namespace,
        "job_url": job_url,
    }


def job_url(partition: str, job_id: str) -> str:
    """A job's page; ids may hold ``#``, ``%`` or ``&``, so they are quoted."""
    return f"{PREFIX}/partitions/{quote(partition, safe='')}/jobs/{quote(job_id, safe='')}"


def _query(request: Request) -> str:
    return f"?{request.url.query}" if request.url.query else ""


T = TypeVar("T")


def _one_per_app(request: Request, name: str, make: Callable[[JobService], T]) -> T:
    """The app's one ``name``, made over its service on first use: every page shares it.
    (The service may be connected only once the app has started.)"""
    state = request.app.state
    if getattr(state, name, None) is None:
        setattr(state, name, make(state.service))
    made: T = getattr(state, name)
    return made


def _feed(request: Request) -> JobFeed:
    return _one_per_app(request, "dashboard_feed", JobFeed)


def _bulk_runs(request: Request) -> BulkRuns:
    return _one_per_app(request, "dashboard_bulk_runs", BulkRuns)


FeedDep = Annotated[JobFeed, Depends(_feed)]
BulkRunsDep = Annotated[BulkRuns, Depends(_bulk_runs)]
ViewerDep = Annotated[Viewer, Depends(viewer_of)]
