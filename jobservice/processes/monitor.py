"""What a long-running process serves to its orchestrator and to Prometheus: ``/healthz`` (the
process answers), ``/readyz`` (it is doing its work: 503 with the reason while it is not) and
``/metrics`` (Prometheus text).

``jobservice worker`` and ``jobservice tracking`` serve these on a port of their own, in their
own event loop; the REST API serves them beside its endpoints. A worker's ``/metrics`` also
carries the Temporal SDK's own metrics, which the SDK exports on a loopback port: one scrape
gets both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from temporalio.runtime import Runtime

from jobservice.settings import MonitorSettings
from jobservice.temporal.connection import metrics_runtime

_log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
"""One part of a process's readiness: None while that part does its work, else why not."""
Scrape = Callable[[], Awaitable[bytes]]
"""More Prometheus text for ``/metrics``, from elsewhere."""

_SCRAPE_TIMEOUT = 2.0


class Readiness:
    """Whether a process is ready: each of its parts adds a check saying why it is not, when
    it is not. Not ready before any part has, nor once ``stop`` is set."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._checks: list[Check] = []

    def add(self, *checks: Check) -> None:
        self._checks.extend(checks)

    async def reasons(self) -> list[str]:
        """Why the process is not ready; none when it is."""
        if self._stop.is_set():
            return ["shutting down"]
        if not self._checks:
            return ["starting"]
        answers = await asyncio.gather(*(check() for check in self._checks))
        return [answer for answer in answers if answer is not None]


def monitor_routes(
    reasons: Callable[[], Awaitable[list[str]]], scrapes: Sequence[Scrape] = ()
) -> list[BaseRoute]:
    """``/healthz``, ``/readyz`` (ready when ``reasons`` gives none) and ``/metrics`` (this
    process's metrics, then the text of each of ``scrapes``)."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        why = await reasons()
        if why:
            return JSONResponse({"ready": False, "reason": "; ".join(why)}, status_code=503)
        return JSONResponse({"ready": True})

    async def metrics(_: Request) -> Response:
        more = await asyncio.gather(*(scrape() for scrape in scrapes))
        text = b"".join([generate_latest(REGISTRY), *more])
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def scrape_of(port: int) -> Scrape:
    """The Prometheus text served on loopback ``port``; nothing while it does not answer."""
    url = f"http://127.0.0.1:{port}/metrics"

    async def scrape() -> bytes:
        try:
            # Not through a proxy the environment may name: the port is this host's own.
            async with httpx.AsyncClient(timeout=_SCRAPE_TIMEOUT, trust_env=False) as client:
                response = await client.get(url)
                response.raise_for_status()
        except httpx.HTTPError as exc:
            _log.debug("no Temporal SDK metrics from %s: %s", url, exc)
            return b""
        text = response.content
        return text if text.endswith(b"\n") or not text else text + b"\n"

    return scrape


@dataclass
class Monitor:
    """What a monitored process hands its parts: the readiness they add their checks to, and
    the runtime its Temporal client is to use (None: the SDK's default, exporting nothing)."""

    readiness: Readiness
    runtime: Runtime | None = None
    url: str | None = None
    """Where the endpoints are served; None when they are not."""


@contextlib.asynccontextmanager
async def monitoring(
    settings: MonitorSettings, stop: asyncio.Event, *, temporal: bool = False
) -> AsyncIterator[Monitor]:
    """Serve the endpoints on ``settings.host:port`` (port 0: none) while inside. With
    ``temporal``, the Temporal SDK's metrics are exported on ``temporal_metrics_port`` for the
    client made with the monitor's runtime, and ``/metrics`` includes them.

    A port that is taken is said in a warning, and the process goes on without what it would
    have served: several processes on one host must be given ports of their own."""
    monitor = Monitor(Readiness(stop))
    if not settings.port:
        yield monitor
        return
    sock = _listen(settings.host, settings.port)
    if sock is None:
        yield monitor
        return
    scrapes: list[Scrape] = []
    if temporal and settings.temporal_metrics_port:
        monitor.runtime = metrics_runtime(settings.temporal_metrics_port)
        if monitor.runtime is not None:
            scrapes.append(scrape_of(settings.temporal_metrics_port))
    app = Starlette(routes=monitor_routes(monitor.readiness.reasons, scrapes))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = QuietServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    monitor.url = f"http://{host}:{settings.port}"
    try:
        yield monitor
    finally:
        server.should_exit = True
        await serving
        sock.close()


def _listen(host: str, port: int) -> socket.socket | None:
    """A socket listening on ``host:port``, or None (said in a warning) when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        _log.warning(
            "cannot serve /healthz, /readyz and /metrics on %s:%d (%s); going on without them. "
            "Set JOBSERVICE_MONITOR__PORT to a free port, or 0",
            host,
            port,
            exc,
        )
        return None


class QuietServer(uvicorn.Server):
    """uvicorn's server, leaving Ctrl-C and SIGTERM to the process it runs in: the process's
    own handlers stop it, after its work has finished."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
