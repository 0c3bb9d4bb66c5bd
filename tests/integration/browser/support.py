"""Helpers of the browser tests: a real HTTP server for an app, and screenshots to look at."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from playwright.async_api import Page
from starlette.types import ASGIApp

from jobservice.processes.monitor import QuietServer

SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"
"""Where every browser test leaves a picture of what a user sees, for a reviewer to look at."""


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` over HTTP on a free loopback port, on the running loop, and yield its
    root URL (``http://127.0.0.1:PORT``) once it answers; stop it after.

    A browser needs a real socket where the API's test client needs none. The socket is bound
    before the server starts, so no other process can take the port in between.
    """
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = QuietServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                await serving
                raise RuntimeError(f"the app did not start serving on 127.0.0.1:{port}")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        closing = getattr(getattr(app, "state", None), "closing", None)
        if closing is not None:
            closing.set()  # the dashboard's event streams end, as when the API stops
        server.should_exit = True
        await serving
        sock.close()


async def screenshot(page: Page, name: str) -> Path:
    """Save the whole of ``page`` as ``build/screenshots/<name>.png`` and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path
