"""Serving the API inside a process that has its own signal handling (``jobservice dev``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from jobservice.api.app import create_app
from jobservice.errors import UnavailableError
from jobservice.models import API_BASE_PATH
from jobservice.service import JobService


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The command's own handlers set its stop event; uvicorn must not take them over.
        yield


async def serve_api(service: JobService, stop: asyncio.Event) -> None:
    """Serve the REST API on the configured host and port until ``stop`` is set."""
    settings = service.settings.api
    config = uvicorn.Config(
        create_app(service), host=settings.host, port=settings.port, log_level="warning"
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving
    stopping.cancel()
    if not server.started:
        raise UnavailableError(
            f"the API could not listen on {settings.host}:{settings.port}; "
            "set JOBSERVICE_API__PORT to another port"
        )


def api_url(service: JobService) -> str:
    settings = service.settings.api
    return f"http://{settings.host}:{settings.port}{API_BASE_PATH}"
