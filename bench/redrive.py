"""The redrive benchmark: what keeping every failed item costs, and what sending them again
takes. Prints figures; it is not a timed test.

    python -m bench.redrive [--items 1000000] [--fail-every 100]

Starts its own Temporal dev server, a scratch SQLite job database and a worker in this
process, with an item handler of the benchmark's own that fails one item in ``--fail-every``
until it is fixed. It runs the same range job with no item failing and with 1 % failing, each
twice in turns, exports the last one's failures with ``jobservice failures ID --jsonl``, fixes
the handler and redrives that job, counting the items the handler sees.
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
from collections.abc import Mapping

import psutil
from temporalio.client import Client

from bench.database import scratch_database
from jobservice import ItemHandler, TaskMessage
from jobservice.jobs.definition import JobDefinition
from jobservice.jobs.status import JobStatus
from jobservice.plugins.handlers import item_of
from jobservice.plugins.registry import Registry, installed
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer
from jobservice.processes.worker import build_worker
from jobservice.service.job_service import JobService
from jobservice.settings import DatabaseSettings, Settings, TemporalSettings, get_settings
from jobservice.temporal.connection import connect

PARTITION = "bench"
ROUNDS = 2
"""Runs of each job, taken in turns."""


class OnePercentHandler(ItemHandler):
    """Fails the items divisible by ``every`` while ``failing``; counts its calls."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.failing = False
        self.calls = 0
        self._lock = threading.Lock()

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        with self._lock:
            self.calls += 1
        if self.failing and int(item_of(message)) % self.every == 0:
            raise ValueError(f"item {item_of(message)} fails, as one in {self.every} does")


async def _run(service: JobService, job_id: str, items: int) -> float:
    """Items/s of a range job of ``items`` to the benchmark's handler, from submit to end."""
    definition = JobDefinition(
        batch_type="range",
        batch_definition=f"0-{items}",
        target_pipe="local:bench-fail",
        failure_tolerance="100%",
    )
    started = time.perf_counter()
    await service.submit(job_id, definition, partition=PARTITION)
    job = await service.wait(job_id, partition=PARTITION, interval=0.1)
    seconds = time.perf_counter() - started
    if job.status is not JobStatus.COMPLETED:
        raise SystemExit(f"job {job_id} ended {job.status} with {job.counts}; no figures")
    return items / seconds


def _export(settings: Settings, job_id: str) -> tuple[float, int]:
    """Seconds ``jobservice failures --jsonl`` takes to print every failure, and the lines."""
    env = dict(os.environ)
    env["JOBSERVICE_TEMPORAL__ADDRESS"] = settings.temporal.address
    env["JOBSERVICE_DATABASE__URL"] = settings.database_url()
    command = [sys.executable, "-m", "jobservice.cli.main", "failures", job_id, "--jsonl"]
    command += ["--partition", PARTITION]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.count("\n")


async def main(items: int, every: int) -> None:
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    handler = OnePercentHandler(every)
    registry = installed().extended(handlers={"bench-fail": handler})
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            client = await connect(TemporalSettings(address=server.address))
            await _bench(client, server, database, registry, handler, items)


async def _bench(
    client: Client,
    server: DevServer,
    database: DatabaseSettings,
    registry: Registry,
    handler: OnePercentHandler,
    items: int,
) -> None:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        temporal=TemporalSettings(address=server.address, task_queue=queue), database=database
    )
    service = JobService(client, settings=settings, registry=registry)
    async with build_worker(client, settings=settings, registry=registry):
        # In turns, as a job's rate drifts with what ran before it on the same server.
        rates: dict[bool, list[float]] = {False: [], True: []}
        for turn in range(ROUNDS):
            for fails in (False, True):
                handler.failing = fails
                job_id = f"{'failing' if fails else 'clean'}-{turn}-{queue}"
                rates[fails].append(await _run(service, job_id, items))
        clean, failing = statistics.mean(rates[False]), statistics.mean(rates[True])
        job = await service.get(job_id, partition=PARTITION)
        recorded = (await service.failures(job_id, partition=PARTITION, limit=1)).total
        export_seconds, lines = await asyncio.to_thread(_export, settings, job_id)
        handler.failing, handler.calls = False, 0
        started = time.perf_counter()
        await service.redrive(job_id, partition=PARTITION)
        redriven = await service.wait(job_id, partition=PARTITION, interval=0.1)
        redrive_seconds = time.perf_counter() - started
    print(
        f"range job, {items:,} items, none failing: {clean:,.0f} items/s "
        f"(mean of {', '.join(f'{rate:,.0f}' for rate in rates[False])})"
    )
    print(
        f"range job, {items:,} items, 1 in {handler.every} failing: {failing:,.0f} items/s "
        f"(mean of {', '.join(f'{rate:,.0f}' for rate in rates[True])}; "
        f"{failing / clean:.0%} of the rate with none failing)"
    )
    print(f"failed items counted: {job.counts.failed:,}; recorded in the ledger: {recorded:,}")
    print(f"export, jobservice failures --jsonl: {lines:,} lines in {export_seconds:.2f} s")
    print(
        f"redrive: {redrive_seconds:.1f} s to {redriven.status}, "
        f"completed {redriven.counts.completed:,}, failed {redriven.counts.failed:,}"
    )
    print(f"items the handler saw during the redrive: {handler.calls:,}")
    targets = [
        ("every failure recorded", recorded == job.counts.failed and lines == recorded),
        ("1 % failing within 15 % of none failing", failing >= clean * 0.85),
        ("export of the failures under 5 s", export_seconds < 5),
        ("the redrive saw exactly the failed items", handler.calls == job.counts.failed),
        ("the redrive completed every item", redriven.counts.completed == items),
    ]
    for name, met in targets:
        print(f"target {name}: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--fail-every", type=int, default=100)
    arguments = parser.parse_args()
    eventloop.run(main(arguments.items, arguments.fail_every))
