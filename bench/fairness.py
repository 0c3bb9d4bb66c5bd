"""The fairness benchmark: does a small job start and finish beside a huge one?

    python -m bench.fairness [--big-items 100000000] [--small-items 10]

On a worker in this process, as ``jobservice dev`` runs it: a ``small-items`` ``local:noop``
job alone, then a ``big-items`` ``range`` job to ``local:noop``; once the big job is well under
way (``batches`` of its workflows running, ``seconds`` after it started), the same small job
beside it. Prints, for the small job alone and beside the big one, the seconds from submitting
it to its first item counted and to its end; then cancels the big job. Starts its own Temporal
dev server, as ``jobservice dev`` does; needs no broker.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

from temporalio.client import Client

from bench.control import PARTITION, _name
from bench.database import scratch_database
from jobservice.jobs.definition import JobDefinition
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer
from jobservice.processes.worker import build_worker
from jobservice.service.job_service import JobService
from jobservice.settings import Settings, TemporalSettings, get_settings
from jobservice.temporal.connection import connect

_GIVE_UP_SECONDS = 300.0


@dataclass
class SmallJob:
    """When a job's first item was counted and when it ended, in seconds after its submission."""

    first_item: float | None = None
    ended: float | None = None
    status: str = ""

    def line(self, name: str) -> str:
        def seconds(value: float | None) -> str:
            return f"{value:.2f} s" if value is not None else f"not within {_GIVE_UP_SECONDS:.0f} s"

        return (
            f"{name}: first item {seconds(self.first_item)}, {self.status} "
            f"{seconds(self.ended)} after it was submitted"
        )


def _range_job(items: int) -> JobDefinition:
    return JobDefinition(
        batch_type="range", batch_definition=f"0-{items}", target_pipe="local:noop"
    )


async def small_job(service: JobService, items: int) -> SmallJob:
    """Submit a job of ``items`` and follow its row until it ends."""
    job_id = _name("small")
    figures = SmallJob()
    submitted = time.perf_counter()
    await service.submit(job_id, _range_job(items), partition=PARTITION)
    while (elapsed := time.perf_counter() - submitted) < _GIVE_UP_SECONDS:
        view = await service.get(job_id, partition=PARTITION)
        if figures.first_item is None and view.counts.completed + view.counts.failed > 0:
            figures.first_item = elapsed
        figures.status = str(view.status)
        if view.status.is_terminal:
            figures.ended = elapsed
            break
        await asyncio.sleep(0.05)
    return figures


async def running_batches(client: Client, job_id: str) -> int:
    """Workflows of the job's tree running now, the root's included."""
    query = (
        f"(WorkflowId = 'job/{PARTITION}/{job_id}' OR "
        f"WorkflowId STARTS_WITH 'job/{PARTITION}/{job_id}/') AND ExecutionStatus = 'Running'"
    )
    return (await client.count_workflows(query)).count


async def under_way(
    service: JobService, client: Client, job_id: str, batches: int, seconds: float
) -> str:
    """Wait until ``batches`` workflows of the job run (two minutes at most) and it has run
    ``seconds``; say how it stands."""
    started = time.perf_counter()
    running = 0
    while time.perf_counter() - started < max(120, seconds):
        running = await running_batches(client, job_id)
        if running >= batches and time.perf_counter() - started >= seconds:
            break
        await asyncio.sleep(0.5)
    view = await service.get(job_id, partition=PARTITION)
    return (
        f"big job after {time.perf_counter() - started:.0f} s: {running} workflows running, "
        f"{view.counts.completed:,} items done, {view.items_per_second or 0:,.0f} items/s"
    )


async def main(big_items: int, small_items: int, batches: int, seconds: float) -> None:
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            client = await connect(TemporalSettings(address=server.address))
            temporal = TemporalSettings(address=server.address, task_queue=_name("queue"))
            settings = Settings(temporal=temporal, database=database)
            service = JobService(client, settings=settings)
            async with build_worker(client, settings=settings):
                await small_job(service, small_items)  # the worker is up and warm
                alone = await small_job(service, small_items)
                print(alone.line(f"{small_items:,}-item job alone"), flush=True)
                big_id = _name("big")
                await service.submit(big_id, _range_job(big_items), partition=PARTITION)
                print(await under_way(service, client, big_id, batches, seconds), flush=True)
                beside = await small_job(service, small_items)
                print(
                    beside.line(f"{small_items:,}-item job beside a {big_items:,}-item job"),
                    flush=True,
                )
                print(await under_way(service, client, big_id, 0, 0), flush=True)
                await service.cancel(big_id, partition=PARTITION)
    met = beside.ended is not None and beside.first_item is not None and beside.first_item <= 5
    print(f"target small job starts within 5 s beside the big one: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big-items", type=int, default=100_000_000)
    parser.add_argument("--small-items", type=int, default=10)
    parser.add_argument(
        "--batches", type=int, default=150, help="workflows of the big job running before"
    )
    parser.add_argument("--seconds", type=float, default=60, help="seconds the big job runs before")
    arguments = parser.parse_args()
    eventloop.run(
        main(arguments.big_items, arguments.small_items, arguments.batches, arguments.seconds)
    )
