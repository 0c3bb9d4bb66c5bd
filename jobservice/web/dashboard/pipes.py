"""The "Pipes" page: each target pipe's limit, shared by every job sending to it, its rate
lately and its jobs; and a form to limit one, live."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobservice.errors import InvalidRequestError
from jobservice.web.dashboard.inputs import steering_value
from jobservice.web.dashboard.routing import PREFIX, ServiceDep, ViewerDep, dashboard_router, page

router = dashboard_router()


@router.get("/pipes", response_class=HTMLResponse)
async def pipes_page(request: Request, service: ServiceDep, viewer: ViewerDep) -> HTMLResponse:
    """Every pipe with a limit or an unfinished job: its limit, its rate lately, its jobs."""
    context = {
        "pipes": await service.pipes(),
        "may_limit": viewer.partitions is None,
        "done": request.query_params.get("done", ""),
    }
    return page(request, "pipes.html", context)


@router.post("/pipes/limit")
async def pipe_limit(request: Request, service: ServiceDep, viewer: ViewerDep) -> Response:
    """Limit the pipe the form names (an empty limit: none), then back to the pipes."""
    viewer.check_every()
    form = await request.form()
    name = str(form.get("name") or "").strip()
    rate = steering_value("rateLimit", form.get("rateLimit"))
    if isinstance(rate, str):
        raise InvalidRequestError(
            f"rateLimit {rate!r} is not a number: give items a second, or leave it empty for "
            "no limit"
        )
    await service.limit_pipe(name, rate)
    return RedirectResponse(f"{PREFIX}/pipes?{urlencode({'done': name})}", status_code=303)
