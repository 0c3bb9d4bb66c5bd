"""The FastAPI application: errors as ``{"message": ...}``, the service layer behind it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from jobservice.errors import JobServiceError
from jobservice.jobs.definition import MAX_BODY_DEPTH
from jobservice.jobs.public import API_BASE_PATH
from jobservice.processes.monitor import monitor_routes
from jobservice.service.job_service import JobService
from jobservice.settings import Settings, get_settings
from jobservice.web.api.docs import add_docs
from jobservice.web.api.openapi import document
from jobservice.web.api.pipes import router as pipes_router
from jobservice.web.api.routes import router
from jobservice.web.dashboard import include_dashboard
from jobservice.web.guard import RequestGuard, encoded_slash
from jobservice.web.security import check_settings
from jobservice.web.status import status_of

BASE_PATH = API_BASE_PATH
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_log = logging.getLogger(__name__)


def create_app(service: JobService | None = None, settings: Settings | None = None) -> FastAPI:
    """The API over ``service``, or over a service connected from ``settings`` at start."""
    settings = service.settings if service is not None else settings or get_settings()
    check_settings(settings.api)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service is None:
            app.state.service = await JobService.connect(settings)
        yield

    app = FastAPI(
        title="jobservice",
        summary="Batch jobs split recursively, tracked to the last item.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # add_docs serves it, with no CDN
        redoc_url=None,
        openapi_url=f"{BASE_PATH}/openapi.json",
    )
    app.state.settings = settings
    # Set when the API begins to stop: the dashboard's streams end, so that it can.
    app.state.closing = asyncio.Event()
    if service is not None:
        app.state.service = service
    app.include_router(router, prefix=BASE_PATH)
    app.include_router(pipes_router, prefix=BASE_PATH)
    include_dashboard(app)
    add_docs(app)

    async def not_ready() -> list[str]:
        ready: JobService = app.state.service
        return (await ready.probe(rabbitmq=False)).problems()

    # At the root, as orchestrators and Prometheus look for them, and open without an API key:
    # they say nothing of any partition's jobs.
    app.router.routes.extend(monitor_routes(not_ready))
    app.add_exception_handler(JobServiceError, _service_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RequestGuard)
    app.openapi = partial(document, app)  # type: ignore[method-assign]
    return app


def _message(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


async def _service_error(_: Request, exc: JobServiceError) -> JSONResponse:
    status = status_of(exc)
    response = _message(status, str(exc))
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"  # a 401 names a scheme (RFC 9110)
    return response


_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}


async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        location = tuple(error.get("loc", ()))
        where = ".".join(str(part) for part in location if part != "body")
        message = str(error.get("msg", "invalid"))
        kind = error.get("type")
        if kind == "json_invalid":
            reason = error.get("ctx", {}).get("error", "")
            where = ""
            message = f"the body is not valid JSON: {reason} at character {location[-1]}"
        elif kind == "extra_forbidden":
            message = "is not a field of this request"
        elif location == ("body",) and kind == "missing":
            message = "the request needs a body: a JSON object, sent as application/json"
        elif location == ("body",) and kind in ("model_attributes_type", "model_type"):
            message = f"the body must be a JSON object, not {_json_type(error.get('input'))}"
        problems.append(f"{where}: {message}" if where else message)
    return _message(400, "; ".join(problems) or "the request is not valid")


def _json_type(value: object) -> str:
    if isinstance(value, bytes):
        return "text of another content type; send it as application/json"
    kind = next((name for type_, name in _JSON_TYPES.items() if isinstance(value, type_)), None)
    return kind or ("null" if value is None else "a number")


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    message = str(exc.detail)
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        message = f"the body nests too deeply to read; a job nests at most {MAX_BODY_DEPTH} levels"
    elif exc.status_code == 400 and isinstance(exc.__cause__, UnicodeError):
        message = "the body is not JSON text: it must be UTF-8"
    elif exc.status_code == 404 and (slashed := encoded_slash(request.scope)) is not None:
        return _message(400, slashed)
    elif exc.status_code == 404:
        message = (
            f"no endpoint has the path {request.url.path[:200]!r}; the endpoints are under"
            f" {BASE_PATH}, as {BASE_PATH}/openapi.json lists them"
        )
    response = _message(exc.status_code, message)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        # The router names the methods of the first route on the path; a path has several.
        response.headers["Allow"] = ", ".join(_methods(request))
    return response


def _methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
    _log.warning("the job database failed a request: %s", exc)
    return _message(503, "the job database cannot be reached; try again shortly")


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    _log.exception("the API failed on a request")
    return _message(500, f"the service failed: {type(exc).__name__}")
