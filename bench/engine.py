"""The engine benchmark: prints items/s, peak worker RSS and the longest workflow history.

    python -m bench.engine [--items 1000000] [--small 100000] [--naive 2000]

Starts its own Temporal dev server and a ``jobservice worker`` process per job, so the RSS is
the worker's alone. Then runs the naive pattern (one activity per item) for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import psutil
from temporalio.client import Client
from temporalio.worker import Worker

from bench.database import scratch_database
from bench.naive import NaiveJob, naive_item
from jobservice import eventloop
from jobservice.devserver import DevServer
from jobservice.models import JobDefinition, JobStatus
from jobservice.service import JobService
from jobservice.settings import DatabaseSettings, Settings, TemporalSettings, get_settings
from jobservice.temporal import connect


@dataclass
class Run:
    items: int
    seconds: float
    peak_rss_mb: float
    longest_history: int
    workflows: int

    @property
    def rate(self) -> float:
        return self.items / self.seconds


async def _sample_rss(process: psutil.Process, stop: asyncio.Event) -> float:
    peak = 0
    while not stop.is_set():
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        await asyncio.sleep(0.05)
    return peak / 2**20


async def _longest_history(client: Client, job_id: str) -> tuple[int, int]:
    query = f"WorkflowId = 'job/bench/{job_id}' OR WorkflowId STARTS_WITH 'job/bench/{job_id}/'"
    longest, runs = 0, 0
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        description = await handle.describe()
        longest = max(longest, description.raw_description.workflow_execution_info.history_length)
        runs += 1
    return longest, runs


async def run_job(server: DevServer, client: Client, database: DatabaseSettings, items: int) -> Run:
    """A range job of ``items`` to local:noop, on a fresh worker process."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        temporal=TemporalSettings(address=server.address, task_queue=queue), database=database
    )
    env = dict(os.environ)
    env["JOBSERVICE_TEMPORAL__ADDRESS"] = server.address
    env["JOBSERVICE_TEMPORAL__TASK_QUEUE"] = queue
    env["JOBSERVICE_DATABASE__URL"] = settings.database_url()
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobservice.cli.main", "worker", env=env, stdout=subprocess.DEVNULL
    )
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(psutil.Process(worker.pid), stop))
    try:
        service = JobService(client, settings=settings)
        job_id = f"range-{items}-{queue}"
        definition = JobDefinition(
            batch_type="range", batch_definition=f"0-{items}", target_pipe="local:noop"
        )
        started = time.perf_counter()
        await service.submit(job_id, definition, partition="bench")
        job = await service.wait(job_id, partition="bench", interval=0.1)
        seconds = time.perf_counter() - started
    finally:
        stop.set()
        peak = await sampler
        worker.terminate()
        await worker.wait()
    if job.status is not JobStatus.COMPLETED or job.counts.completed != items:
        raise SystemExit(f"the job ended {job.status} with {job.counts}; the figures are void")
    longest, runs = await _longest_history(client, job_id)
    return Run(items, seconds, peak, longest, runs)


async def run_naive(client: Client, items: int) -> float:
    """Items/s of one activity per item, in this process."""
    queue = f"naive-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[NaiveJob], activities=[naive_item]):
        started = time.perf_counter()
        done = await client.execute_workflow(NaiveJob.run, items, id=queue, task_queue=queue)
        seconds = time.perf_counter() - started
    assert done == items
    return items / seconds


async def main(items: int, small: int, naive: int) -> None:
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            client = await connect(TemporalSettings(address=server.address))
            small_run = await run_job(server, client, database, small)
            big_run = await run_job(server, client, database, items)
            naive_rate = await run_naive(client, naive)
    for run in (small_run, big_run):
        print(
            f"range job, {run.items:>9,} items to local:noop: {run.seconds:6.1f} s, "
            f"{run.rate:>9,.0f} items/s, peak worker RSS {run.peak_rss_mb:5.0f} MB, "
            f"{run.workflows} workflow runs, longest history {run.longest_history:,} events"
        )
    print(f"naive, one activity per item, {naive:,} items: {naive_rate:,.0f} items/s")
    print(f"ratio, engine ({items:,} items) to naive: {big_run.rate / naive_rate:,.0f}x")
    targets = [
        (f"items/s >= 20,000 at {items:,}", big_run.rate >= 20_000),
        ("peak worker RSS <= 300 MB", max(small_run.peak_rss_mb, big_run.peak_rss_mb) <= 300),
        (
            f"RSS at {items:,} within 20% of RSS at {small:,}",
            big_run.peak_rss_mb <= small_run.peak_rss_mb * 1.2,
        ),
        ("no workflow run above 10,240 events", big_run.longest_history <= 10_240),
    ]
    for name, met in targets:
        print(f"target {name}: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=2_000)
    arguments = parser.parse_args()
    eventloop.run(main(arguments.items, arguments.small, arguments.naive))
