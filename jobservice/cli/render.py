"""How the CLI shows jobs to a person.

Rich's tables and progress bars load where they are drawn: ``status`` draws neither."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from jobservice.jobs.job import JobView
    from jobservice.jobs.public import Failure


def as_json(job: JobView) -> str:
    return json.dumps(job.model_dump(mode="json", by_alias=True))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def show_job(console: Console, job: JobView) -> None:
    """A job in lines that fit an 80-column terminal: counts of any size stay on their line."""
    counts = job.counts
    title = f"job {job.id} (partition {job.partition})" + (f" {job.name}" if job.name else "")
    console.print(f"[bold]{title}[/bold]: {job.status}")
    if job.status_reason:
        console.print(f"  waiting    {job.status_reason}", markup=False)
    total = f"{counts.total:,}" + ("" if job.splitting_complete or job.status.is_terminal else "+")
    console.print(f"  items      {counts.done:,} / {total} ({job.percentage_complete:g}%)")
    console.print(f"  completed  {counts.completed:<15,}  failed   {counts.failed:,}")
    console.print(f"  in flight  {counts.in_flight:<15,}  waiting  {counts.waiting:,}")
    rate = f"{job.items_per_second:,.0f} items/s" if job.items_per_second else "-"
    console.print(f"  rate       {rate:<15}  ETA      {_duration(job.eta_seconds)}")
    now = f"{job.recent_items_per_second:,.0f} items/s" if job.recent_items_per_second else "-"
    limit = f"{job.rate_limit:,g}/s" if job.rate_limit is not None else "none"
    console.print(f"  now        {now:<15}  limit    {limit}")
    window = f"{job.in_flight_window:,}" if job.in_flight_window is not None else "default"
    console.print(
        f"  steering   window {window}, failure tolerance {job.failure_tolerance}, "
        f"priority {job.priority}"
    )
    if job.held_messages:
        held = f"{job.held_messages:,} results, for their 'to' queue at resume"
        console.print(f"  held       {held}")
    if job.redrive_count:
        last = job.last_redrive_time.strftime("%Y-%m-%d %H:%M:%S") if job.last_redrive_time else "-"
        times = "once" if job.redrive_count == 1 else f"{job.redrive_count:,} times"
        console.print(f"  redriven   {times}, last {last} UTC")
    if job.dropped_messages:
        console.print(f"  dropped    {job.dropped_messages:,} results not passed on: the job ended")
    if job.failures:
        more = (
            f" of {counts.failed:,}; `jobservice failures {job.id}` lists them all"
            if counts.failed > len(job.failures)
            else ""
        )
        console.print(f"  failures   (first {len(job.failures)}{more})", markup=False)
        for failure in job.failures:
            console.print(
                f"    {failure.failure_id}  {failure.failure_source}: {failure.failure_message}",
                markup=False,
            )


def steering_line(job: JobView) -> str:
    """The steering a job runs under, on a line: its rate limit, window, tolerance, priority."""
    limit = f"{job.rate_limit:,g}/s" if job.rate_limit is not None else "none"
    window = f"{job.in_flight_window:,}" if job.in_flight_window is not None else "default"
    return f"{limit}, window {window}, tolerance {job.failure_tolerance}, priority {job.priority}"


def failure_line(failure: Failure) -> str:
    """A failed item on a line: its task id, when, where and why, tab-separated."""
    when = datetime.fromtimestamp(failure.failure_time / 1000, UTC).isoformat(timespec="seconds")
    message = " ".join(failure.failure_message.split())
    return f"{failure.failure_id}\t{when}\t{failure.failure_source}\t{message}"


def show_jobs(console: Console, jobs: list[JobView]) -> None:
    from rich.table import Table

    table = Table("partition", "id", "status", "name", "created")
    for job in jobs:
        created = job.create_time.strftime("%Y-%m-%d %H:%M:%S") if job.create_time else "-"
        table.add_row(job.partition, job.id, job.status, job.name or "", created)
    console.print(table)


async def progress_bar(console: Console, updates: AsyncIterator[JobView]) -> JobView:
    """A live bar over ``updates``; returns the last job view."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    last: JobView | None = None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("job", total=None, rate="", status="")
        async for job in updates:
            last = job
            rate = f"{job.items_per_second:,.0f}/s" if job.items_per_second else ""
            bar.update(
                task,
                description=job.id,
                total=max(job.counts.total, 1),
                completed=job.counts.done,
                rate=rate,
                status=str(job.status),
            )
    assert last is not None
    return last
