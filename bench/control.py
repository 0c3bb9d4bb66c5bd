"""The control benchmark: how fast pause and cancel stop a whole batch tree.

    python -m bench.control [--items 3000000] [--queue-items 200000]

For a ``local:noop`` job and a ``local:sleep`` (1 ms) job of ``items``, and a queue job of
``queue-items`` through the reference worker, each on a ``jobservice worker`` process of its
own: pause a few seconds in and print how long the call took, when the job's completed count
last moved and how many items it moved by after the call returned; then resume, cancel a few
seconds later and print how long the call took, when the last workflow of the tree closed,
and how many workflows of the tree started after the call returned (the target is none).

Then the row's lag: a ``local:count`` job of ``lag-items`` on a worker in this process, whose
handler counts the items it is given; every quarter second, how many seconds ago the handler
had done what the job's row now reads.

Needs the local RabbitMQ for the queue job. Starts its own Temporal dev server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client

from bench.database import scratch_database
from bench.pipes import reference_worker, scratch_queue
from jobservice.jobs.definition import JobDefinition
from jobservice.jobs.status import JobStatus
from jobservice.messages import TaskMessage
from jobservice.plugin import ItemHandler
from jobservice.plugins.registry import installed
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer
from jobservice.processes.worker import build_worker
from jobservice.service.job_service import JobService
from jobservice.settings import RabbitSettings, Settings, TemporalSettings, get_settings
from jobservice.temporal.connection import connect

PARTITION = "bench"


def _name(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Figures:
    name: str
    pause_call: float = 0.0
    pause_last_move: float = 0.0
    moved_after_pause: int = 0
    in_flight_paused: int = 0
    cancel_call: float = 0.0
    tree_closed: float = 0.0
    started_after_cancel: int = 0
    batches: int = 0
    cancelled_counts: str = ""

    def lines(self) -> list[str]:
        return [
            f"{self.name}:",
            f"  pause: call {self.pause_call:.2f} s; completed count last moved "
            f"{self.pause_last_move:.2f} s after it returned, by {self.moved_after_pause:,} "
            f"items; in flight once paused {self.in_flight_paused:,}",
            f"  cancel: call {self.cancel_call:.2f} s; last workflow of the tree "
            f"({self.batches} runs) closed {self.tree_closed:.2f} s after it returned; "
            f"{self.started_after_cancel} workflows started after it returned; "
            f"the row then reads {self.cancelled_counts}",
        ]


async def _tree(client: Client, job_id: str) -> list[tuple[datetime | None, datetime | None]]:
    """(start, close) of every run of the job's tree."""
    query = (
        f"WorkflowId = 'job/{PARTITION}/{job_id}' OR "
        f"WorkflowId STARTS_WITH 'job/{PARTITION}/{job_id}/'"
    )
    return [(w.start_time, w.close_time) async for w in client.list_workflows(query)]


async def _pause(service: JobService, job_id: str, figures: Figures) -> None:
    called = time.perf_counter()
    paused = await service.pause(job_id, partition=PARTITION)
    returned = time.perf_counter()
    figures.pause_call = returned - called
    at_return, last = paused.counts.completed, paused.counts.completed
    moved_at = returned
    while time.perf_counter() - returned < 10:
        await asyncio.sleep(0.1)
        view = await service.get(job_id, partition=PARTITION)
        if view.counts.completed != last:
            last, moved_at = view.counts.completed, time.perf_counter()
        figures.in_flight_paused = view.counts.in_flight
    figures.pause_last_move = moved_at - returned
    figures.moved_after_pause = last - at_return


async def _cancel(service: JobService, client: Client, job_id: str, figures: Figures) -> None:
    called = time.perf_counter()
    await service.cancel(job_id, partition=PARTITION)
    returned_at = datetime.now(UTC)
    figures.cancel_call = time.perf_counter() - called
    deadline = time.perf_counter() + 120
    runs = await _tree(client, job_id)
    while any(close is None for _, close in runs) and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
        runs = await _tree(client, job_id)
    closes = [close for _, close in runs if close is not None]
    figures.batches = len(runs)
    figures.tree_closed = (max(closes) - returned_at).total_seconds() if closes else 0.0
    if any(close is None for _, close in runs):
        figures.tree_closed = float("inf")
    figures.started_after_cancel = sum(1 for start, _ in runs if start and start > returned_at)
    view = await service.get(job_id, partition=PARTITION)
    counts = view.counts
    figures.cancelled_counts = (
        f"{view.status}, total {counts.total:,}, completed {counts.completed:,}, "
        f"failed {counts.failed:,}"
    )


@asynccontextmanager
async def worker_process(settings: Settings) -> AsyncIterator[None]:
    """A ``jobservice worker`` process of its own, with its tracking consumer."""
    env = dict(os.environ)
    env["JOBSERVICE_TEMPORAL__ADDRESS"] = settings.temporal.address
    env["JOBSERVICE_TEMPORAL__TASK_QUEUE"] = settings.temporal.task_queue
    env["JOBSERVICE_DATABASE__URL"] = settings.database_url()
    env["JOBSERVICE_RABBITMQ__TRACKING_PIPE"] = settings.rabbitmq.tracking_pipe
    env["JOBSERVICE_RABBITMQ__DEAD_LETTER_PIPE"] = settings.rabbitmq.dead_letter_pipe
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobservice.cli.main", "worker", env=env, stdout=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        worker.terminate()
        await worker.wait()


async def measure(
    client: Client, settings: Settings, name: str, definition: JobDefinition
) -> Figures:
    """Pause, resume and cancel one job, on a worker of its own."""
    figures = Figures(name)
    service = JobService(client, settings=settings)
    job_id = _name("control")
    async with worker_process(settings):
        await service.submit(job_id, definition, partition=PARTITION)
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:  # well under way: hundreds of batches out
            view = await service.get(job_id, partition=PARTITION)
            if view.counts.completed >= 20_000:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
        await _pause(service, job_id, figures)
        await service.resume(job_id, partition=PARTITION)
        await asyncio.sleep(5)
        await _cancel(service, client, job_id, figures)
    if figures.cancelled_counts.startswith(str(JobStatus.COMPLETED)):
        raise SystemExit(f"{name}: the job completed before it was cancelled; use more items")
    return figures


async def queue_job(client: Client, settings: Settings, items: int) -> Figures:
    rabbit = settings.rabbitmq
    async with scratch_queue(rabbit, "target") as (channel, queue), reference_worker(queue):
        try:
            return await measure(
                client,
                settings,
                f"queue job, {items:,} items through the reference worker",
                JobDefinition(batch_type="range", batch_definition=f"0-{items}", target_pipe=queue),
            )
        finally:
            for name in (rabbit.tracking_pipe, rabbit.dead_letter_pipe):
                await channel.queue_delete(name)


class CountingHandler(ItemHandler):
    """Counts the items it is given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        with self._lock:
            self.count += 1


async def row_lag(client: Client, settings: Settings, items: int) -> list[float]:
    """Seconds the job's row trails its handler, sampled every quarter second while it runs."""
    handler = CountingHandler()
    registry = installed().extended(handlers={"count": handler})
    service = JobService(client, settings=settings, registry=registry)
    job_id = _name("lag")
    handled: list[tuple[float, int]] = []
    lags: list[float] = []
    async with build_worker(client, settings=settings, registry=registry):
        await service.submit(
            job_id,
            JobDefinition(
                batch_type="range", batch_definition=f"0-{items}", target_pipe="local:count"
            ),
            partition=PARTITION,
        )
        while True:
            now = time.perf_counter()
            handled.append((now, handler.count))
            view = await service.get(job_id, partition=PARTITION)
            if view.status.is_terminal:
                break
            if 0 < handled[-1][1] < items:
                reached = next(t for t, count in handled if count >= view.counts.completed)
                lags.append(now - reached)
            await asyncio.sleep(0.25)
    return lags


async def controls(
    client: Client, settings: Callable[[], Settings], items: int, queue_items: int
) -> list[Figures]:
    """Pause and cancel a local:noop, a local:sleep and a queue job, printing as they go."""
    noop = JobDefinition(
        batch_type="range", batch_definition=f"0-{items}", target_pipe="local:noop"
    )
    sleep = noop.model_copy(
        update={"target_pipe": "local:sleep", "task_message_params": {"sleepMillis": "1"}}
    )
    results = []
    for name, definition in (("local:noop", noop), ("local:sleep 1 ms", sleep)):
        results.append(await measure(client, settings(), f"{name}, {items:,} items", definition))
        print("\n".join(results[-1].lines()), flush=True)
    results.append(await queue_job(client, settings(), queue_items))
    print("\n".join(results[-1].lines()), flush=True)
    return results


async def main(items: int, queue_items: int, lag_items: int, lag_only: bool) -> None:
    rabbit = RabbitSettings(tracking_pipe=_name("tracking"), dead_letter_pipe=_name("dead"))
    results: list[Figures] = []
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            client = await connect(TemporalSettings(address=server.address))

            def settings() -> Settings:
                temporal = TemporalSettings(address=server.address, task_queue=_name("queue"))
                return Settings(temporal=temporal, rabbitmq=rabbit, database=database)

            if not lag_only:
                results = await controls(client, settings, items, queue_items)
            lags = await row_lag(client, settings(), lag_items)
    print(
        f"row lag, {lag_items:,} items to local:count: median {statistics.median(lags):.2f} s, "
        f"90th percentile {statistics.quantiles(lags, n=10)[-1]:.2f} s, most {max(lags):.2f} s "
        f"behind the handler, over {len(lags)} samples"
    )
    for figures in results:
        met = (
            figures.pause_call < 1
            and figures.pause_last_move <= 3
            and figures.tree_closed <= 10
            and figures.started_after_cancel == 0
        )
        print(f"target {figures.name}: {'met' if met else 'MISSED'}")
    print(f"target row at most ~2 s behind: {'met' if max(lags) <= 2.5 else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=3_000_000)
    parser.add_argument("--queue-items", type=int, default=200_000)
    parser.add_argument("--lag-items", type=int, default=1_000_000)
    parser.add_argument("--lag-only", action="store_true", help="measure the row's lag alone")
    arguments = parser.parse_args()
    eventloop.run(
        main(arguments.items, arguments.queue_items, arguments.lag_items, arguments.lag_only)
    )
