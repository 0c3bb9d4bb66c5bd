"""The steering benchmark: does a rate limit hold, and how fast does a change of it show?

    python -m bench.steering [--items 3000000] [--seconds 20] [--pipes-only]

1. A ``items`` ``range`` job to ``local:noop`` at ``rateLimit`` 2,000 on one ``jobservice
   worker`` process, tuned to 8,000 and then to 500, ``seconds`` at each: the items completed in
   each 5 s window (from the workers' ``jobservice_items_total`` counters, read every quarter
   second) and the seconds from each ``tune`` call until a 1 s window first came within 5 % of
   the new limit.
2. The same job at 2,000 on two worker processes.
3. The first-item and last-item latency of a priority-1 10-item job beside a priority-3
   100,000,000-item job, against the same with both at priority 3.
4. A pipe limit of 1,000 shared by two queue jobs through the reference worker: each job's
   rate and the sum in 5 s windows (:mod:`bench.pipe_limits`).

Starts its own Temporal dev server and job database; the last part needs the local
RabbitMQ.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from bench.control import PARTITION, _name
from bench.database import scratch_database
from bench.fairness import under_way
from bench.pipe_limits import pipe_shared
from jobservice.jobs.definition import JobDefinition
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer, free_port
from jobservice.service.job_service import JobService
from jobservice.settings import Settings, TemporalSettings, get_settings
from jobservice.temporal.connection import connect

_COMPLETED = re.compile(r'^jobservice_items_total\{outcome="completed",[^}]*\} (\S+)$', re.M)
WINDOW = 5.0
BOUND = 0.05


@asynccontextmanager
async def workers(settings: Settings, count: int) -> AsyncIterator[list[int]]:
    """``count`` ``jobservice worker`` processes; the ports they serve metrics on."""
    ports = [free_port() for _ in range(count)]
    processes = []
    for port in ports:
        env = dict(os.environ)
        env["JOBSERVICE_TEMPORAL__ADDRESS"] = settings.temporal.address
        env["JOBSERVICE_TEMPORAL__TASK_QUEUE"] = settings.temporal.task_queue
        env["JOBSERVICE_DATABASE__URL"] = settings.database_url()
        env["JOBSERVICE_MONITOR__PORT"] = str(port)
        env["JOBSERVICE_MONITOR__TEMPORAL_METRICS_PORT"] = "0"
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "jobservice.cli.main",
                "worker",
                "--no-tracking",
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        yield ports
    finally:
        for process in processes:
            process.terminate()
            await process.wait()


async def completed(http: httpx.AsyncClient, ports: list[int]) -> float:
    """Items the workers have completed, summed over their counters."""
    total = 0.0
    for port in ports:
        with contextlib.suppress(httpx.HTTPError):
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            total += sum(float(value) for value in _COMPLETED.findall(text))
    return total


class Samples:
    """(time, items completed) every quarter second, while ``run`` runs."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.points: list[tuple[float, float]] = []
        self.started = asyncio.Event()
        """Set once the first items are completed."""

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=2) as http:
            while not stop.is_set():
                done = await completed(http, self.ports)
                self.points.append((time.perf_counter(), done))
                if done:
                    self.started.set()
                await asyncio.sleep(0.25)

    def at(self, moment: float) -> float:
        """Items completed at ``moment``, between the samples around it."""
        before = [(t, n) for t, n in self.points if t <= moment]
        after = [(t, n) for t, n in self.points if t >= moment]
        if not before or not after:
            return (before or after)[-1 if before else 0][1]
        (t0, n0), (t1, n1) = before[-1], after[0]
        return n0 if t1 == t0 else n0 + (n1 - n0) * (moment - t0) / (t1 - t0)

    def rate(self, start: float, seconds: float) -> float:
        return (self.at(start + seconds) - self.at(start)) / seconds

    def settled(self, since: float, limit: float, until: float) -> float | None:
        """Seconds from ``since`` until a 1 s window first came within the bound of ``limit``."""
        moment = since
        while moment + 1 <= until:
            if abs(self.rate(moment, 1) - limit) <= BOUND * limit:
                return moment - since
            moment += 0.25
        return None


async def paced(
    service: JobService, settings: Settings, items: int, seconds: float, count: int
) -> None:
    """A rate-limited job on ``count`` workers, tuned twice; its windows and settling times."""
    async with workers(settings, count) as ports:
        samples, stop = Samples(ports), asyncio.Event()
        sampling = asyncio.create_task(samples.run(stop))
        job_id = _name("paced")
        definition = JobDefinition(
            batch_type="range",
            batch_definition=f"0-{items}/10000",
            target_pipe="local:noop",
            rate_limit=2000,
        )
        await service.submit(job_id, definition, partition=PARTITION)
        await samples.started.wait()
        steps = [(2000.0, time.perf_counter())]
        await asyncio.sleep(seconds)
        for limit in (8000.0, 500.0):
            await service.tune(job_id, {"rateLimit": limit}, partition=PARTITION)
            steps.append((limit, time.perf_counter()))
            await asyncio.sleep(seconds)
        end = time.perf_counter()
        await service.cancel(job_id, partition=PARTITION)
        stop.set()
        await sampling
    workers_said = f"{count} worker{'s' if count > 1 else ''}"
    for index, (limit, since) in enumerate(steps):
        until = steps[index + 1][1] if index + 1 < len(steps) else end
        windows = []
        start = since + (2 if index else 1)
        while start + WINDOW <= until:
            windows.append(samples.rate(start, WINDOW))
            start += WINDOW
        worst = max((abs(w - limit) / limit for w in windows), default=float("nan"))
        line = (
            f"{workers_said}, limit {limit:,.0f}/s: 5 s windows "
            + ", ".join(f"{w:,.0f}" for w in windows)
            + f" items/s; worst {worst:.1%} off"
        )
        if index:
            shown = samples.settled(since, limit, until)
            line += (
                f"; the change showed in {shown:.2f} s"
                if shown is not None
                else ("; the change never showed")
            )
        print(line, flush=True)


async def urgent(service: JobService, client: object, priority: int) -> str:
    """A 10-item job of ``priority`` beside a 100,000,000-item job of priority 3."""
    from temporalio.client import Client

    assert isinstance(client, Client)
    big_id = _name("big")
    big = JobDefinition(
        batch_type="range", batch_definition="0-100000000", target_pipe="local:noop"
    )
    await service.submit(big_id, big, partition=PARTITION)
    await under_way(service, client, big_id, 100, 30)
    small_id = _name("small")
    small = JobDefinition(
        batch_type="range", batch_definition="0-10", target_pipe="local:noop", priority=priority
    )
    submitted = time.perf_counter()
    await service.submit(small_id, small, partition=PARTITION)
    first = last = None
    while time.perf_counter() - submitted < 120:
        view = await service.get(small_id, partition=PARTITION)
        if first is None and view.counts.done:
            first = time.perf_counter() - submitted
        if view.status.is_terminal:
            last = time.perf_counter() - submitted
            break
        await asyncio.sleep(0.05)
    await service.cancel(big_id, partition=PARTITION)

    def seconds(value: float | None) -> str:
        return f"{value:.2f} s" if value is not None else "not within 120 s"

    return f"first item {seconds(first)}, last {seconds(last)}"


async def main(items: int, seconds: float, pipes_only: bool) -> None:
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            client = await connect(TemporalSettings(address=server.address))
            temporal = TemporalSettings(address=server.address, task_queue=_name("queue"))
            settings = Settings(temporal=temporal, database=database)
            if pipes_only:
                await pipe_shared(client, settings, seconds)
                return
            service = JobService(client, settings=settings)
            await paced(service, settings, items, seconds, 1)
            await paced(service, settings, items, seconds, 2)
            from jobservice.processes.worker import build_worker

            async with build_worker(client, settings=settings):
                for priority, name in ((1, "priority 1"), (3, "priority 3 (alike)")):
                    line = await urgent(service, client, priority)
                    print(
                        f"10-item job of {name} beside a 100,000,000-item job: {line}", flush=True
                    )
            await pipe_shared(client, settings, seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=3_000_000)
    parser.add_argument("--seconds", type=float, default=20, help="seconds at each limit")
    parser.add_argument("--pipes-only", action="store_true", help="the pipe limit alone")
    arguments = parser.parse_args()
    eventloop.run(main(arguments.items, arguments.seconds, arguments.pipes_only))
