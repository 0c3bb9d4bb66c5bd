"""The commands that run a part of the service until stopped: the embedded stack, the REST
API, a worker, the tracking consumer, the demo, and the job database's upgrade."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from jobservice.cli.grace import exit_after_grace
from jobservice.cli.render import progress_bar, show_job
from jobservice.cli.shared import fail, settings_of
from jobservice.errors import UnavailableError
from jobservice.processes import eventloop, heap

if TYPE_CHECKING:
    from jobservice.jobs.job import JobView
    from jobservice.settings import Settings

app = typer.Typer()
db_app = typer.Typer(help="The job database.", no_args_is_help=True)

Serving = Callable[["Settings", asyncio.Event], Coroutine[Any, Any, None]]
"""What a server command runs: given the settings and the event Ctrl-C or SIGTERM sets."""


def _serve(ctx: typer.Context, work: Serving) -> None:
    """Run ``work`` until Ctrl-C or SIGTERM sets its stop event, then let it finish cleanly."""
    settings = settings_of(ctx)
    stop = asyncio.Event()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.call_later(heap.SETTLE_AFTER_SECONDS, heap.settle)
        await work(settings, stop)

    try:
        eventloop.run(go(), uvloop=settings.uvloop)
    except UnavailableError as exc:
        raise fail(str(exc), 5) from None


def _check_api_settings(settings: Settings) -> None:
    """Before anything starts: a refusal to serve is the first thing to fix."""
    from jobservice.web.security import InsecureSettingsError, check_settings

    try:
        check_settings(settings.api)
    except InsecureSettingsError as exc:
        raise fail(str(exc), 2) from None


@app.command()
def dev(ctx: typer.Context) -> None:
    """Run the embedded stack in the foreground: Temporal (SQLite under the data folder,
    Web UI) and a worker. Ctrl-C stops all of it."""
    _check_api_settings(settings_of(ctx))

    async def work(settings: Settings, stop: asyncio.Event) -> None:
        from jobservice.processes.monitor import monitoring
        from jobservice.processes.stack import embedded_stack
        from jobservice.service.job_service import JobService
        from jobservice.web.server import api_url, dashboard_url, serve_api

        console = Console()
        port = int(settings.temporal.address.rpartition(":")[2])
        async with (
            monitoring(settings.monitor, stop, temporal=True) as monitor,
            embedded_stack(settings, persistent=True, port=port, monitor=monitor) as stack,
        ):
            service = JobService(stack.client, settings=stack.settings)
            api = asyncio.create_task(serve_api(service, stop))
            console.print(
                f"Temporal   {stack.server.address}  (namespace {settings.temporal.namespace})"
            )
            console.print(f"Web UI     {stack.server.ui_url}")
            console.print(f"REST API   {api_url(service)}  (docs: /job-service-ui)")
            console.print(f"dashboard  {dashboard_url(service)}")
            if monitor.url is not None:
                console.print(f"monitor    {monitor.url}  (/healthz, /readyz, /metrics)")
            console.print(f"jobs in    {stack.settings.database_url()}")
            console.print("worker     running; Ctrl-C stops everything")
            await stop.wait()
            console.print("stopping…")
            await api

    _serve(ctx, work)


@app.command()
def api(ctx: typer.Context) -> None:
    """Serve the REST API alone (JOBSERVICE_API__PORT, default 8080)."""
    _check_api_settings(settings_of(ctx))

    async def work(settings: Settings, stop: asyncio.Event) -> None:
        from jobservice.service.job_service import JobService
        from jobservice.web.server import api_url, dashboard_url, serve_api

        service = await JobService.connect(settings)
        Console().print(
            f"REST API on {api_url(service)}, docs at /job-service-ui, "
            f"dashboard at {dashboard_url(service)}"
        )
        await serve_api(service, stop)

    _serve(ctx, work)


@app.command()
def worker(
    ctx: typer.Context,
    tracking: Annotated[
        bool, typer.Option(help="Also consume the tracking pipe (results of queue pipes).")
    ] = True,
) -> None:
    """Run one worker process; start more on other machines to scale out."""

    async def work(settings: Settings, stop: asyncio.Event) -> None:
        from jobservice.processes.monitor import monitoring
        from jobservice.processes.worker import run_worker
        from jobservice.temporal.connection import connect
        from jobservice.temporal.search import ensure_search_attributes

        async with monitoring(settings.monitor, stop, temporal=True) as monitor:
            client = await connect(settings.temporal, runtime=monitor.runtime)
            await ensure_search_attributes(client)
            Console().print(
                f"worker on {settings.temporal.address}, task queue {settings.temporal.task_queue}"
                + (f", tracking {settings.rabbitmq.tracking_pipe}" if tracking else "")
                + _monitored_at(monitor.url)
            )
            backstop = asyncio.create_task(
                exit_after_grace(stop, settings.worker_shutdown_grace_seconds)
            )
            try:
                await run_worker(
                    client, stop, settings=settings, tracking=tracking, readiness=monitor.readiness
                )
            finally:
                backstop.cancel()  # the grace, once it runs, runs on until the process has gone

    _serve(ctx, work)


def _monitored_at(url: str | None) -> str:
    return f"; health and metrics at {url}" if url is not None else ""


@app.command()
def tracking(ctx: typer.Context) -> None:
    """Run the tracking consumer alone: results of external workers back into their jobs."""

    async def work(settings: Settings, stop: asyncio.Event) -> None:
        from jobservice.db.store import open_store
        from jobservice.processes.monitor import monitoring
        from jobservice.rabbitmq.broker import Broker, broker_host
        from jobservice.temporal.connection import connect
        from jobservice.tracking.consumer import TrackingConsumer

        async with monitoring(settings.monitor, stop) as monitor:
            client = await connect(settings.temporal)
            store = await open_store(settings.database_url())
            broker = Broker(settings.rabbitmq)
            consumer = TrackingConsumer(
                client, broker, store, lag_seconds=settings.monitor.lag_interval_seconds
            )
            monitor.readiness.add(consumer.not_reading)
            Console().print(
                f"tracking {settings.rabbitmq.tracking_pipe} on {broker_host(settings.rabbitmq)}"
                + _monitored_at(monitor.url)
            )
            try:
                await consumer.run(stop)
            finally:
                await broker.close()
                store.engine.dispose()

    _serve(ctx, work)


@app.command()
def demo(
    ctx: typer.Context,
    items: Annotated[int, typer.Option(help="Items in the demo job.")] = 1_000_000,
) -> None:
    """Start the embedded stack, run a demo job with a live progress bar, stop again."""
    settings = settings_of(ctx)
    console = Console()

    async def work() -> JobView:
        from jobservice.jobs.definition import JobDefinition
        from jobservice.processes.stack import embedded_stack
        from jobservice.service.job_service import JobService

        async with embedded_stack(settings, persistent=False) as stack:
            console.print(
                f"embedded Temporal at {stack.server.address}, Web UI {stack.server.ui_url}"
            )
            service = JobService(stack.client, settings=stack.settings)
            definition = JobDefinition(
                name="demo",
                batch_type="range",
                batch_definition=f"0-{items}",
                target_pipe="local:noop",
            )
            await service.submit("demo", definition)
            console.print(f"submitted job demo: range 0-{items}, each item to local:noop")
            job = await progress_bar(console, service.watch("demo", interval=0.25))
            show_job(console, job)
            return job

    job = eventloop.run(work(), uvloop=settings.uvloop)
    raise typer.Exit(job.status.exit_code)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the job database's schema up to this version's."""
    from jobservice.db.engine import create_database_engine, current_revision
    from jobservice.db.schema import upgrade

    engine = create_database_engine(settings_of(ctx).database_url())
    try:
        upgrade(engine)
        Console().print(f"job database at schema revision {current_revision(engine)}")
    except Exception as exc:
        raise fail(f"the job database cannot be upgraded: {exc}", 5) from None
    finally:
        engine.dispose()
