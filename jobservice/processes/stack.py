"""The embedded stack: a Temporal dev server and a worker in this process."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr
from temporalio.client import Client

from jobservice.db.engine import create_database_engine
from jobservice.db.schema import upgrade
from jobservice.processes.devserver import DevServer, free_port
from jobservice.processes.worker import run_worker
from jobservice.settings import Settings
from jobservice.temporal.connection import connect

if TYPE_CHECKING:
    from jobservice.processes.monitor import Monitor


@dataclass
class EmbeddedStack:
    server: DevServer
    client: Client
    settings: Settings


@asynccontextmanager
async def embedded_stack(
    settings: Settings,
    *,
    persistent: bool,
    port: int | None = None,
    ui: bool = True,
    monitor: Monitor | None = None,
) -> AsyncIterator[EmbeddedStack]:
    """Start Temporal and a worker with its tracking consumer; stop them on the way out.

    ``persistent`` keeps jobs in ``<data_dir>/temporal.db`` across restarts; otherwise they
    live in memory only. The worker's client is made on ``monitor``'s runtime, and the worker
    adds its readiness there.
    """
    data_dir = settings.dev.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    scratch = None
    if not persistent and settings.database.url is None:
        # Jobs of a stack that forgets its workflows are forgotten with them.
        scratch = tempfile.TemporaryDirectory(prefix="jobservice-", dir=data_dir)
        url = SecretStr(f"sqlite:///{Path(scratch.name) / 'jobs.db'}")
        settings = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": url})}
        )
    engine = create_database_engine(settings.database_url())
    await asyncio.to_thread(upgrade, engine)
    engine.dispose()
    server = DevServer(
        binary=settings.dev.temporal_binary(),
        port=port or free_port(),
        ui_port=(settings.dev.ui_port if persistent else free_port()) if ui else None,
        db_file=data_dir / "temporal.db" if persistent else None,
        log_file=Path(data_dir) / "temporal.log",
    )
    async with server:
        settings = settings.model_copy(
            update={
                "temporal": settings.temporal.model_copy(
                    update={
                        "address": server.address,
                        "ui_url": server.ui_url or settings.temporal.ui_url,
                    }
                )
            }
        )
        client = await connect(
            settings.temporal, runtime=monitor.runtime if monitor is not None else None
        )
        stop = asyncio.Event()
        run = asyncio.create_task(
            run_worker(
                client,
                stop,
                settings=settings,
                readiness=monitor.readiness if monitor is not None else None,
            )
        )
        try:
            yield EmbeddedStack(server, client, settings)
        finally:
            stop.set()
            await asyncio.gather(run, return_exceptions=True)
            if scratch is not None:
                scratch.cleanup()
