"""The engine benchmark: prints items/s, peak worker RSS, the longest workflow history, the
CPU each process spent per item, and the job's Temporal cost: history events and approximate
actions over all its workflow runs. Beside them, the bare loop (:mod:`bench.bare`): the same
per-item work in one process without orchestration, the engine's own limit.

    python -m bench.engine [--items 1000000] [--small 100000] [--naive 10000]

Starts its own Temporal dev server and a ``jobservice worker`` process per job, so the RSS is
the worker's alone. Then runs the naive pattern (one activity per item) for the ratios; it runs
on fewer items, as one workflow run of it could not hold a million (its cost at ``--items`` is
extrapolated). At 10,000 items its history stays below Temporal's 51,200-event cap.
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

from bench.cpu import CpuMeter, cpu_line, temporal_server
from bench.database import scratch_database
from bench.history import (
    ACTIONS_NOTE,
    HistoryCost,
    cost_line,
    extrapolated_line,
    history_cost,
    job_query,
)
from bench.naive import NaiveJob, naive_item
from jobservice.jobs.definition import JobDefinition
from jobservice.jobs.status import JobStatus
from jobservice.plugins.range import MAX_LEAF
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer
from jobservice.service.job_service import JobService
from jobservice.settings import DatabaseSettings, Settings, TemporalSettings, get_settings
from jobservice.temporal.connection import connect

EVENTS_PER_ITEM_BEFORE = 0.0075
"""History events per item of the 1,000,000-item job before its items were made cheaper
(7,505 events; 8e3b93b on a 2-core machine)."""


@dataclass
class Run:
    items: int
    seconds: float
    peak_rss_mb: float
    cost: HistoryCost
    cpu: dict[str, float]

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


async def run_job(
    server: DevServer, client: Client, database: DatabaseSettings, items: int, leaf: str = ""
) -> Run:
    """A range job of ``items`` to local:noop, on a fresh worker process; ``leaf`` ("/100000")
    sets the range's leaf size, else the plugin's default."""
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
    meter = CpuMeter(_job_processes(worker.pid))
    try:
        service = JobService(client, settings=settings)
        job_id = f"range-{items}-{queue}"
        definition = JobDefinition(
            batch_type="range", batch_definition=f"0-{items}{leaf}", target_pipe="local:noop"
        )
        started = time.perf_counter()
        await service.submit(job_id, definition, partition="bench")
        job = await service.wait(job_id, partition="bench", interval=0.1)
        seconds = time.perf_counter() - started
        cpu = meter.per_item(items)
    finally:
        stop.set()
        peak = await sampler
        worker.terminate()
        await worker.wait()
    if job.status is not JobStatus.COMPLETED or job.counts.completed != items:
        raise SystemExit(f"the job ended {job.status} with {job.counts}; the figures are void")
    return Run(items, seconds, peak, await history_cost(client, job_query("bench", job_id)), cpu)


def _job_processes(worker_pid: int) -> dict[str, psutil.Process]:
    processes = {"worker": psutil.Process(worker_pid), "this process": psutil.Process()}
    server = temporal_server()
    if server is not None:
        processes["Temporal"] = server
    return processes


def fresh_bare_rate(items: int) -> float:
    """The bare loop's items/s, in a process of its own."""
    bare = subprocess.run(
        [sys.executable, "-m", "bench.bare", "--items", str(items)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(bare.stdout.strip().splitlines()[-1])


async def run_naive(client: Client, items: int) -> tuple[float, HistoryCost]:
    """Items/s and history of one activity per item, in this process."""
    queue = f"naive-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[NaiveJob], activities=[naive_item]):
        started = time.perf_counter()
        done = await client.execute_workflow(NaiveJob.run, items, id=queue, task_queue=queue)
        seconds = time.perf_counter() - started
    assert done == items
    return items / seconds, await history_cost(client, f"WorkflowId = '{queue}'")


async def main(items: int, small: int, naive: int) -> None:
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            client = await connect(TemporalSettings(address=server.address))
            small_run = await run_job(server, client, database, small)
            big_run = await run_job(server, client, database, items)
            wide_run = await run_job(server, client, database, items, f"/{MAX_LEAF}")
            naive_rate, naive_cost = await run_naive(client, naive)
    bare = fresh_bare_rate(items)
    for run, tree in ((small_run, ""), (big_run, ""), (wide_run, f", leaves of {MAX_LEAF:,}")):
        print(
            f"range job, {run.items:>9,} items to local:noop{tree}: {run.seconds:6.1f} s, "
            f"{run.rate:>9,.0f} items/s, peak worker RSS {run.peak_rss_mb:5.0f} MB, "
            f"{run.cost.runs} workflow runs, longest history {run.cost.longest:,} events"
        )
        print(cpu_line(run.cpu))
    print(
        f"bare loop, {items:,} items (the same builder, messages and noop handler, no "
        f"orchestration, a process of its own): {bare:,.0f} items/s; engine at "
        f"{big_run.rate / bare:.0%} of it, {wide_run.rate / bare:.0%} with leaves of {MAX_LEAF:,}"
    )
    print(f"naive, one activity per item, {naive:,} items: {naive_rate:,.0f} items/s")
    print(f"ratio, engine ({items:,} items) to naive: {big_run.rate / naive_rate:,.0f}x")
    print(cost_line(f"Temporal cost, range job of {items:,} items (measured)", items, big_run.cost))
    print(cost_line(f"Temporal cost, naive of {naive:,} items (measured)", naive, naive_cost))
    print(
        extrapolated_line(
            f"Temporal cost, naive of {items:,} items (extrapolated from {naive:,}, not run)",
            naive,
            items,
            naive_cost,
        )
    )
    events_ratio = (naive_cost.events / naive) / (big_run.cost.events / items)
    print(f"events/item, naive to engine: {events_ratio:,.0f}x")
    print(ACTIONS_NOTE)
    targets = [
        (f"items/s >= 20,000 at {items:,}", big_run.rate >= 20_000),
        ("engine >= 50% of the bare loop", big_run.rate >= bare / 2),
        ("engine >= 250x naive", big_run.rate >= naive_rate * 250),
        ("peak worker RSS <= 170 MB", max(small_run.peak_rss_mb, big_run.peak_rss_mb) <= 170),
        (
            f"history events/item <= {EVENTS_PER_ITEM_BEFORE} (before each item got cheaper)",
            big_run.cost.events / items <= EVENTS_PER_ITEM_BEFORE,
        ),
        (
            f"RSS at {items:,} within 20% of RSS at {small:,}",
            big_run.peak_rss_mb <= small_run.peak_rss_mb * 1.2,
        ),
        ("no workflow run above 10,240 events", big_run.cost.longest <= 10_240),
    ]
    for name, met in targets:
        print(f"target {name}: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=10_000)
    arguments = parser.parse_args()
    eventloop.run(main(arguments.items, arguments.small, arguments.naive))
