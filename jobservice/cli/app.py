"""The Typer app: a thin layer over the service layer.

Exit codes: 0 done; for ``submit --wait`` and ``watch`` 0 Completed, 1 Failed, 3 Cancelled;
2 a request that cannot be carried out (bad definition, conflict, wrong state); 4 no such job;
5 Temporal unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from jobservice import eventloop
from jobservice.cli.grace import exit_after_grace
from jobservice.cli.render import as_json, progress_bar, show_job, show_jobs
from jobservice.errors import JobNotFoundError, JobServiceError, UnavailableError
from jobservice.jobs import DEFAULT_PARTITION, JobStatus

if TYPE_CHECKING:
    from jobservice.models import JobView
    from jobservice.service import JobService
    from jobservice.settings import Settings

# Each command imports what it needs when it runs: the Temporal SDK, SQLAlchemy, FastAPI and
# aio-pika take a second to load, which ``jobservice --help`` and a polling ``status`` must
# not pay (tests/unit/test_cli_imports.py keeps it so).

app = typer.Typer(
    name="jobservice",
    help="Batch jobs on Temporal: split huge batches, process every item, track progress.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")

PartitionOption = Annotated[str, typer.Option("--partition", "-p", help="The job's partition.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
JobIdArgument = Annotated[str, typer.Argument(help="The job id.")]
db_app = typer.Typer(help="The job database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def _fail(console: Console, message: str, code: int) -> typer.Exit:
    # One line, however long: scripts read it, and Rich would wrap it at the terminal's width.
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load_file(path: Path) -> dict[str, Any]:
    from jobservice.cli.jobfile import JobFileError, load_job_file

    try:
        return load_job_file(path)
    except JobFileError as exc:
        raise _fail(Console(stderr=True), str(exc), 2) from None


def _run(ctx: typer.Context, work: Callable[[JobService], Awaitable[T]]) -> T:
    """Run ``work`` against the configured Temporal; map jobservice errors to exit codes."""

    async def go() -> T:
        from jobservice.service import JobService

        return await work(await JobService.connect(_settings(ctx)))

    return _answer(ctx, go())


def _answer(ctx: typer.Context, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main``; map jobservice errors to exit codes."""
    errors = Console(stderr=True)
    try:
        return eventloop.run(main, uvloop=_settings(ctx).uvloop)
    except JobNotFoundError as exc:
        raise _fail(errors, str(exc), 4) from None
    except UnavailableError as exc:
        raise _fail(errors, str(exc), 5) from None
    except JobServiceError as exc:
        raise _fail(errors, str(exc), 2) from None


def _serve(ctx: typer.Context, work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run until Ctrl-C or SIGTERM sets ``stop``, then let ``work`` finish cleanly."""

    async def go() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await work

    try:
        eventloop.run(go(), uvloop=_settings(ctx).uvloop)
    except UnavailableError as exc:
        raise _fail(Console(stderr=True), str(exc), 5) from None


_RECONNECT_LOGGERS = ("aiormq.connection", "aio_pika.robust_connection", "aio_pika.tools")


@app.callback()
def root(ctx: typer.Context) -> None:
    """Settings come from JOBSERVICE_* variables, e.g. JOBSERVICE_TEMPORAL__ADDRESS."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    # RabbitMQ's client libraries log each failed try to reconnect; the worker and the tracking
    # consumer say once themselves that the broker is away, and once that it is back.
    for name in _RECONNECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from jobservice.settings import InvalidSettingsError, get_settings

    try:
        ctx.obj = get_settings()
    except InvalidSettingsError as exc:
        raise _fail(Console(stderr=True), str(exc), 2) from None


@app.command()
def dev(ctx: typer.Context) -> None:
    """Run the embedded stack in the foreground: Temporal (SQLite under the data folder,
    Web UI) and a worker. Ctrl-C stops all of it."""
    settings = _settings(ctx)
    _check_api_settings(settings)
    console = Console()
    stop = asyncio.Event()
    port = int(settings.temporal.address.rpartition(":")[2])

    async def work() -> None:
        from jobservice.api.server import api_url, serve_api
        from jobservice.service import JobService
        from jobservice.stack import embedded_stack

        async with embedded_stack(settings, persistent=True, port=port) as stack:
            service = JobService(stack.client, settings=stack.settings)
            api = asyncio.create_task(serve_api(service, stop))
            console.print(
                f"Temporal   {stack.server.address}  (namespace {settings.temporal.namespace})"
            )
            console.print(f"Web UI     {stack.server.ui_url}")
            console.print(f"REST API   {api_url(service)}  (docs: /job-service-ui)")
            console.print(f"jobs in    {stack.settings.database_url()}")
            console.print("worker     running; Ctrl-C stops everything")
            await stop.wait()
            console.print("stopping…")
            await api

    _serve(ctx, work(), stop)


def _check_api_settings(settings: Settings) -> None:
    """Before anything starts: a refusal to serve is the first thing to fix."""
    from jobservice.api.security import InsecureSettingsError, check_settings

    try:
        check_settings(settings.api)
    except InsecureSettingsError as exc:
        raise _fail(Console(stderr=True), str(exc), 2) from None


@app.command()
def api(ctx: typer.Context) -> None:
    """Serve the REST API alone (JOBSERVICE_API__PORT, default 8080)."""
    settings = _settings(ctx)
    _check_api_settings(settings)
    stop = asyncio.Event()

    async def work() -> None:
        from jobservice.api.server import api_url, serve_api
        from jobservice.service import JobService

        service = await JobService.connect(settings)
        Console().print(f"REST API on {api_url(service)}, docs at /job-service-ui")
        await serve_api(service, stop)

    _serve(ctx, work(), stop)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the job database's schema up to this version's."""
    from jobservice.db.engine import create_database_engine, current_revision
    from jobservice.db.schema import upgrade

    settings = _settings(ctx)
    engine = create_database_engine(settings.database_url())
    try:
        upgrade(engine)
        Console().print(f"job database at schema revision {current_revision(engine)}")
    except Exception as exc:
        raise _fail(
            Console(stderr=True), f"the job database cannot be upgraded: {exc}", 5
        ) from None
    finally:
        engine.dispose()


@app.command()
def worker(
    ctx: typer.Context,
    tracking: Annotated[
        bool, typer.Option(help="Also consume the tracking pipe (results of queue pipes).")
    ] = True,
) -> None:
    """Run one worker process; start more on other machines to scale out."""
    settings = _settings(ctx)
    stop = asyncio.Event()

    async def work() -> None:
        from jobservice.temporal import connect, ensure_search_attributes
        from jobservice.worker import run_worker

        client = await connect(settings.temporal)
        await ensure_search_attributes(client)
        Console().print(
            f"worker on {settings.temporal.address}, task queue {settings.temporal.task_queue}"
            + (f", tracking {settings.rabbitmq.tracking_pipe}" if tracking else "")
        )
        backstop = asyncio.create_task(
            exit_after_grace(stop, settings.worker_shutdown_grace_seconds)
        )
        try:
            await run_worker(client, stop, settings=settings, tracking=tracking)
        finally:
            backstop.cancel()  # the grace, once it runs, runs on until the process has gone

    _serve(ctx, work(), stop)


@app.command()
def tracking(ctx: typer.Context) -> None:
    """Run the tracking consumer alone: results of external workers back into their jobs."""
    settings = _settings(ctx)
    stop = asyncio.Event()

    async def work() -> None:
        from jobservice.broker import Broker, broker_host
        from jobservice.temporal import connect
        from jobservice.tracking import TrackingConsumer

        client = await connect(settings.temporal)
        broker = Broker(settings.rabbitmq)
        Console().print(
            f"tracking {settings.rabbitmq.tracking_pipe} on {broker_host(settings.rabbitmq)}"
        )
        try:
            await TrackingConsumer(client, broker).run(stop)
        finally:
            await broker.close()

    _serve(ctx, work(), stop)


@app.command()
def demo(
    ctx: typer.Context,
    items: Annotated[int, typer.Option(help="Items in the demo job.")] = 1_000_000,
) -> None:
    """Start the embedded stack, run a demo job with a live progress bar, stop again."""
    settings = _settings(ctx)
    console = Console()

    async def work() -> JobView:
        from jobservice.service import JobService
        from jobservice.stack import embedded_stack

        async with embedded_stack(settings, persistent=False) as stack:
            console.print(
                f"embedded Temporal at {stack.server.address}, Web UI {stack.server.ui_url}"
            )
            service = JobService(stack.client, settings=stack.settings)
            from jobservice.models import JobDefinition

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

    job = eventloop.run(work(), uvloop=_settings(ctx).uvloop)
    raise typer.Exit(job.status.exit_code)


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} {value!r} is not KEY=VALUE")
        pairs[key] = text
    return pairs


@app.command()
def submit(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(help="A JSON or YAML job definition, - for stdin; options override it."),
    ] = None,
    job_id: Annotated[str, typer.Option("--job-id", "-j", help="The job's id.")] = "",
    partition: PartitionOption = DEFAULT_PARTITION,
    batch_type: Annotated[str | None, typer.Option(help="The batch plugin, e.g. range.")] = None,
    definition: Annotated[str | None, typer.Option(help="The batch definition.")] = None,
    task_message_type: Annotated[str | None, typer.Option(help="The task message builder.")] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="A task message param, KEY=VALUE.")
    ] = None,
    target_pipe: Annotated[
        str | None, typer.Option(help="Where items go: local:<handler>.")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="A label, KEY=VALUE.")] = None,
    name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    description: Annotated[str | None, typer.Option(help="A description.")] = None,
    failure_tolerance: Annotated[
        str | None, typer.Option(help="Failed items the job accepts: a count or a percentage.")
    ] = None,
    after: Annotated[
        list[str] | None,
        typer.Option(help="A prerequisite job: this one waits until it is Completed."),
    ] = None,
    delay: Annotated[
        int | None, typer.Option(min=0, help="Seconds to wait once the prerequisites are done.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job to end.")] = False,
    as_json_: JsonOption = False,
) -> None:
    """Submit a job. Submitting the same id and definition again is not an error."""
    if not job_id:
        raise typer.BadParameter("--job-id is required", param_hint="--job-id")
    body: dict[str, Any] = _load_file(file) if file else {}
    flags = {
        "batchType": batch_type,
        "batchDefinition": definition,
        "taskMessageType": task_message_type,
        "targetPipe": target_pipe,
        "name": name,
        "description": description,
        "failureTolerance": failure_tolerance,
        "delay": delay,
    }
    body.update({key: value for key, value in flags.items() if value is not None})
    if param:
        body["taskMessageParams"] = {
            **body.get("taskMessageParams", {}),
            **_pairs(param, "--param"),
        }
    if label:
        body["labels"] = {**body.get("labels", {}), **_pairs(label, "--label")}
    if after:
        body["prerequisiteJobIds"] = [*body.get("prerequisiteJobIds", []), *after]
    from pydantic import ValidationError

    from jobservice.models import JobDefinition

    try:
        job_definition = JobDefinition.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'job'}: {error['msg']}"
            for error in exc.errors()
        )
        raise _fail(Console(stderr=True), f"invalid job definition: {problems}", 2) from None
    console = Console()

    async def work(service: JobService) -> JobView:
        submission = await service.submit(job_id, job_definition, partition=partition)
        if not as_json_:
            verb = "submitted" if submission.created else "already submitted, unchanged:"
            console.print(f"{verb} job {job_id} in partition {partition}")
        if not wait:
            return submission.job
        if as_json_:
            return await service.wait(job_id, partition=partition)
        return await progress_bar(console, service.watch(job_id, partition=partition))

    job = _run(ctx, work)
    if as_json_:
        print(as_json(job))
    elif wait:
        show_job(console, job)
    if wait:
        raise typer.Exit(job.status.exit_code)


@app.command()
def status(
    ctx: typer.Context,
    job_id: JobIdArgument,
    partition: PartitionOption = DEFAULT_PARTITION,
    as_json_: JsonOption = False,
) -> None:
    """A job's state, counts, percentage, rate, ETA and failures."""

    async def read() -> JobView:
        # The reader alone, not the whole service: a polling script runs this often.
        from jobservice.reader import JobReader

        reader = await JobReader.connect(_settings(ctx))
        return await reader.get(job_id, partition=partition)

    job = _answer(ctx, read())
    if as_json_:
        print(as_json(job))
    else:
        show_job(Console(), job)


@app.command()
def watch(
    ctx: typer.Context, job_id: JobIdArgument, partition: PartitionOption = DEFAULT_PARTITION
) -> None:
    """A live progress bar until the job ends; exits 0 Completed, 1 Failed, 3 Cancelled."""
    console = Console()
    job = _run(
        ctx, lambda service: progress_bar(console, service.watch(job_id, partition=partition))
    )
    show_job(console, job)
    raise typer.Exit(job.status.exit_code)


def _control(ctx: typer.Context, verb: str, job_id: str, partition: str, as_json_: bool) -> None:
    async def work(service: JobService) -> JobView:
        operation: Callable[..., Awaitable[JobView]] = getattr(service, verb)
        return await operation(job_id, partition=partition)

    job = _run(ctx, work)
    print(as_json(job)) if as_json_ else Console().print(f"job {job_id}: {job.status}")


@app.command()
def pause(
    ctx: typer.Context,
    job_id: JobIdArgument,
    partition: PartitionOption = DEFAULT_PARTITION,
    as_json_: JsonOption = False,
) -> None:
    """Pause a job: nothing new starts, and items in flight stop within a moment."""
    _control(ctx, "pause", job_id, partition, as_json_)


@app.command()
def resume(
    ctx: typer.Context,
    job_id: JobIdArgument,
    partition: PartitionOption = DEFAULT_PARTITION,
    as_json_: JsonOption = False,
) -> None:
    """Resume a paused job."""
    _control(ctx, "resume", job_id, partition, as_json_)


@app.command()
def cancel(
    ctx: typer.Context,
    job_id: JobIdArgument,
    partition: PartitionOption = DEFAULT_PARTITION,
    as_json_: JsonOption = False,
) -> None:
    """Cancel a job and its whole batch tree; returns once the tree has closed."""
    _control(ctx, "cancel", job_id, partition, as_json_)


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    status_: Annotated[
        JobStatus | None, typer.Option("--status", help="Only jobs in this state.")
    ] = None,
    partition: Annotated[str | None, typer.Option("--partition", "-p")] = None,
    limit: Annotated[int, typer.Option(help="At most this many jobs.")] = 100,
    as_json_: JsonOption = False,
) -> None:
    """Jobs, newest first."""
    jobs = _run(ctx, lambda s: s.list(partition=partition, status=status_, limit=limit))
    if as_json_:
        print(json.dumps([job.model_dump(mode="json", by_alias=True) for job in jobs]))
    else:
        show_jobs(Console(), jobs)
