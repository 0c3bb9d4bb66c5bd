"""Serving the API inside a process that has its own signal handling (``jobservice dev``)."""

from __future__ import annotations

import asyncio
import json

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from jobservice.errors import UnavailableError
from jobservice.jobs.public import API_BASE_PATH
from jobservice.processes.monitor import QuietServer
from jobservice.service.job_service import JobService
from jobservice.web.app import create_app
from jobservice.web.guard import MAX_HEADER_BYTES, MAX_URL_BYTES, url_too_long

MAX_REQUEST_HEAD_BYTES = 262_144
"""What the server reads of a request line and headers: well past the API's own bounds, so
that the API itself answers a URL or headers past those."""


PARSED_URL_BYTES = 65_535
"""The longest URL the parser's URL splitting takes; the guard refuses one past
:data:`MAX_URL_BYTES` as it does any, before it reaches there."""


class _Unreadable(Exception):
    """Raised in a parser callback: the request is refused, the connection closed."""


def _answer(status: int, reason: str, message: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 answer with the JSON ``{"message": ...}``, closing the connection."""
    body = json.dumps({"message": message}).encode()
    head = [f"HTTP/1.1 {status} {reason}\r\n".encode()]
    head += [name + b": " + value + b"\r\n" for name, value in headers]
    head += [
        b"content-type: application/json\r\n",
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode(),
    ]
    return b"".join(head) + body


CANNOT_READ = (
    f"the request is not HTTP/1.1 the API can read, or its request line and headers are over "
    f"{MAX_REQUEST_HEAD_BYTES:,} bytes; a URL may be {MAX_URL_BYTES:,} bytes and the headers "
    f"{MAX_HEADER_BYTES:,}"
)


class _Protocol(HttpToolsProtocol):
    """HTTP/1.1 as uvicorn serves it with llhttp's parser, with a JSON answer to a request it
    cannot read, and a bound on what it reads of a request's line and headers."""

    _head_bytes = 0
    _refusal: tuple[int, str, str] | None = None

    def on_message_begin(self) -> None:
        self._head_bytes, self._refusal = 0, None
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if len(self.url) > PARSED_URL_BYTES:
            path, _, query = self.url.partition(b"#")[0].partition(b"?")
            status, message = url_too_long(len(path) + len(query))
            self._refusal = (status, "URI Too Long", message)
            raise _Unreadable
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            raise _Unreadable  # the parser fails the request: a 400

    def send_400_response(self, msg: str) -> None:
        status, reason, message = self._refusal or (400, "Bad Request", CANNOT_READ)
        headers = list(self.server_state.default_headers)
        self.transport.write(_answer(status, reason, message, headers))
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
