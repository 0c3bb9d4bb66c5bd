"""Serving the API inside a process that has its own signal handling (``jobservice dev``)."""

from __future__ import annotations

import asyncio
import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from jobservice.errors import UnavailableError
from jobservice.jobs.public import API_BASE_PATH
from jobservice.processes.monitor import QuietServer
from jobservice.service.job_service import JobService
from jobservice.web.app import create_app
from jobservice.web.guard import MAX_HEADER_BYTES, MAX_URL_BYTES

MAX_REQUEST_HEAD_BYTES = 262_144
"""What the server reads of a request line and headers: well past the API's own bounds, so
that the API itself answers a URL or headers past those."""


class _Protocol(H11Protocol):
    """HTTP/1.1 as uvicorn serves it, with a JSON answer to a request it cannot read."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {
                "message": "the request is not HTTP/1.1 the API can read, or its request line"
                f" and headers are over {MAX_REQUEST_HEAD_BYTES:,} bytes; a URL may be"
                f" {MAX_URL_BYTES:,} bytes and the headers {MAX_HEADER_BYTES:,}"
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


async def serve_api(service: JobService, stop: asyncio.Event) -> None:
    """Serve the REST API on the configured host and port until ``stop`` is set."""
    settings = service.settings.api
    app = create_app(service)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=_Protocol,
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
    )
    server = QuietServer(config)
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    app.state.closing.set()
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


def dashboard_url(service: JobService) -> str:
    settings = service.settings.api
    return f"http://{settings.host}:{settings.port}/dashboard"
