"""The commands that act on jobs: submit, status, watch, pause, resume, cancel, tune, delete
and list."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from jobservice.cli.render import (
    as_json,
    failure_line,
    progress_bar,
    show_job,
    show_jobs,
    steering_line,
)
from jobservice.cli.shared import (
    JobIdArgument,
    JsonOption,
    PartitionOption,
    answer,
    fail,
    run_service,
    settings_of,
)
from jobservice.jobs.status import DEFAULT_PARTITION, JobStatus

if TYPE_CHECKING:
    from jobservice.jobs.job import JobView
    from jobservice.service.job_service import JobService

app = typer.Typer()


def _load_file(path: Path) -> dict[str, Any]:
    from jobservice.cli.jobfile import JobFileError, load_job_file

    try:
        return load_job_file(path)
    except JobFileError as exc:
        raise fail(str(exc), 2) from None


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
    rate_limit: Annotated[
        float | None, typer.Option(help="Items a second for the whole job; none by default.")
    ] = None,
    window: Annotated[
        int | None, typer.Option(help="Items out on a queue without a result, at most.")
    ] = None,
    priority: Annotated[
        int | None, typer.Option(help="1 (most urgent) to 5; 3 by default.")
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
        "rateLimit": rate_limit,
        "inFlightWindow": window,
        "priority": priority,
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

    from jobservice.jobs.definition import JobDefinition

    try:
        job_definition = JobDefinition.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'job'}: {error['msg']}"
            for error in exc.errors()
        )
        raise fail(f"invalid job definition: {problems}", 2) from None
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

    job = run_service(ctx, work)
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
        from jobservice.service.reader import JobReader

        reader = await JobReader.connect(settings_of(ctx))
        return await reader.get(job_id, partition=partition)

    job = answer(ctx, read())
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
    job = run_service(
        ctx, lambda service: progress_bar(console, service.watch(job_id, partition=partition))
    )
    show_job(console, job)
    raise typer.Exit(job.status.exit_code)


Operation = Callable[["JobService"], Callable[..., Awaitable["JobView"]]]
"""Which of the service's operations a command calls."""

_CONTROLS: dict[str, tuple[str, Operation]] = {
    "pause": (
        "Pause a job: nothing new starts, and items in flight stop within a moment.",
        lambda service: service.pause,
    ),
    "resume": ("Resume a paused job.", lambda service: service.resume),
    "cancel": (
        "Cancel a job and its whole batch tree; returns once the tree has closed.",
        lambda service: service.cancel,
    ),
    "redrive": (
        "Run a finished job again in place: exactly its failed items, sent once more, after "
        "the items it never reached if it was cancelled or failed short of them.",
        lambda service: service.redrive,
    ),
}
"""The commands that change a job's state, with their help and the operation each calls."""


def _control(operation_of: Operation) -> Callable[..., None]:
    """A command that calls the operation on the job, then prints the job's new state."""

    def control(
        ctx: typer.Context,
        job_id: JobIdArgument,
        partition: PartitionOption = DEFAULT_PARTITION,
        as_json_: JsonOption = False,
    ) -> None:
        job = run_service(ctx, lambda service: operation_of(service)(job_id, partition=partition))
        print(as_json(job)) if as_json_ else Console().print(f"job {job_id}: {job.status}")

    return control


for _verb, (_help, _operation_of) in _CONTROLS.items():
    app.command(_verb, help=_help)(_control(_operation_of))


_TUNED = {"rateLimit": float, "inFlightWindow": int, "failureTolerance": str, "priority": int}
"""What ``tune`` changes, in the API's names, and how its option's text is read."""


@app.command()
def tune(
    ctx: typer.Context,
    job_id: JobIdArgument,
    partition: PartitionOption = DEFAULT_PARTITION,
    rate_limit: Annotated[
        str | None,
        typer.Option(help="Items a second for the whole job, across every worker; none: no limit."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="Items out on a queue without a result; none: the service's setting."),
    ] = None,
    failure_tolerance: Annotated[
        str | None, typer.Option(help="Failed items accepted: a count or a percentage (2.5%).")
    ] = None,
    priority: Annotated[str | None, typer.Option(help="1 (most urgent) to 5; none: 3.")] = None,
    as_json_: JsonOption = False,
) -> None:
    """Steer a running or paused job without stopping it: in force in its whole tree within
    two seconds. A value it cannot take changes nothing, and exits 2 saying why."""
    given = dict(zip(_TUNED, (rate_limit, window, failure_tolerance, priority), strict=True))
    patch: dict[str, Any] = {}
    for key, text in given.items():
        if text is None:
            continue
        try:
            patch[key] = None if text.strip().lower() == "none" else _TUNED[key](text)
        except ValueError:
            raise fail(f"{key} {text!r} is not a number; give one, or none", 2) from None
    if not patch:
        raise fail(
            "say what to change: --rate-limit, --window, --failure-tolerance or --priority", 2
        )
    job = run_service(ctx, lambda service: service.tune(job_id, patch, partition=partition))
    if as_json_:
        print(as_json(job))
    else:
        Console().print(f"job {job_id}: {job.status}, {steering_line(job)}", markup=False)


@app.command()
def delete(
    ctx: typer.Context, job_id: JobIdArgument, partition: PartitionOption = DEFAULT_PARTITION
) -> None:
    """Delete a job: stop it if it runs, and remove it, with what its paused pipe holds."""
    run_service(ctx, lambda service: service.delete(job_id, partition=partition))
    Console().print(f"job {job_id}: deleted")


@app.command()
def failures(
    ctx: typer.Context,
    job_id: JobIdArgument,
    partition: PartitionOption = DEFAULT_PARTITION,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON object a line, in the API's shape.")
    ] = False,
    round_: Annotated[
        int | None,
        typer.Option("--round", help="0: the first run's; n: the n-th redrive's; the last's."),
    ] = None,
) -> None:
    """Every failed item of a job, in the order they failed: its task id, time, source and
    message. Streamed as they are read, however many there are. After a redrive, what failed
    again (--round 0 for the first run's)."""

    async def work(service: JobService) -> int:
        count = 0
        async for failure in service.all_failures(job_id, partition=partition, round_=round_):
            count += 1
            print(failure.model_dump_json(by_alias=True) if jsonl else failure_line(failure))
        return count

    count = run_service(ctx, work)
    if not jsonl:
        Console(stderr=True).print(f"job {job_id}: {count:,} failed items")


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
    jobs = run_service(ctx, lambda s: s.list(partition=partition, status=status_, limit=limit))
    if as_json_:
        print(json.dumps([job.model_dump(mode="json", by_alias=True) for job in jobs]))
    else:
        show_jobs(Console(), jobs)
