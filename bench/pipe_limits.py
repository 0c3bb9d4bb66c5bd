"""A pipe limit shared by two queue jobs through the reference worker: each job's rate (its
items done, from its row, written four times a second here) and the sum (the items published
to the queue, from the worker's counter), in 10 s windows and over the whole run. Part of
``make bench-steering``; needs the local RabbitMQ."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client

from bench.pipes import _name, reference_worker, scratch_queue
from jobservice.jobs.definition import JobDefinition
from jobservice.metrics import ITEMS
from jobservice.processes.worker import run_worker
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings, RabbitSettings, Settings

LIMIT = 1000.0
WINDOW = 10.0


async def _sample(
    service: JobService, job_ids: list[str], queue: str, seconds: float
) -> list[tuple[float, list[int]]]:
    """(time, [each job's items done..., items published to ``queue`` by this process's
    worker]) four times a second for ``seconds``."""
    points = []
    end = time.perf_counter() + seconds
    published = ITEMS.labels("forwarded", queue)
    while time.perf_counter() < end:
        views = await asyncio.gather(*(service.get(job_id) for job_id in job_ids))
        done = [view.counts.done for view in views]
        points.append((time.perf_counter(), [*done, int(published._value.get())]))
        await asyncio.sleep(0.25)
    return points


def _done(point: tuple[float, list[int]], job: int) -> int:
    """Items done at ``point`` by job ``job`` (the last: published by both)."""
    return point[1][job]


def _windows(points: list[tuple[float, list[int]]], job: int) -> list[float]:
    """Items a second in each window of :data:`WINDOW`, of job ``job``."""
    rates, start = [], 0
    for index, point in enumerate(points):
        if point[0] - points[start][0] >= WINDOW:
            done = _done(point, job) - _done(points[start], job)
            rates.append(done / (point[0] - points[start][0]))
            start = index
    return rates


async def pipe_shared(client: Client, base: Settings, seconds: float) -> None:
    """Two queue jobs on one pipe limited to :data:`LIMIT`, through the reference worker."""
    rabbit = RabbitSettings(tracking_pipe=_name("tracking"), dead_letter_pipe=_name("dead"))
    # Rows written four times a second: the windows are read from them.
    engine = EngineSettings(progress_interval_seconds=0.25)
    settings = base.model_copy(update={"rabbitmq": rabbit, "engine": engine})
    service = JobService(client, settings=settings)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(client, stop, settings=settings))
    try:
        async with scratch_queue(rabbit, "limited") as (_, queue), reference_worker(queue):
            await service.limit_pipe(queue, LIMIT)
            job_ids = [_name("shared-a"), _name("shared-b")]
            for job_id in job_ids:
                definition = JobDefinition(
                    batch_type="range", batch_definition="0-1000000/10000", target_pipe=queue
                )
                await service.submit(job_id, definition)
            await asyncio.sleep(5)  # both sending, the shares dealt
            points = await _sample(service, job_ids, queue, seconds)
            for job_id in job_ids:
                await service.cancel(job_id)
    finally:
        stop.set()
        await worker
    span = points[-1][0] - points[0][0]
    for name, job in (("job a, done", 0), ("job b, done", 1), ("both, published", 2)):
        rates = _windows(points, job)
        whole = (_done(points[-1], job) - _done(points[0], job)) / span
        print(
            f"pipe limit {LIMIT:,.0f}/s shared by two queue jobs, {name}: 10 s windows "
            + ", ".join(f"{rate:,.0f}" for rate in rates)
            + f" items/s; {whole:,.0f} over {span:.0f} s",
            flush=True,
        )
