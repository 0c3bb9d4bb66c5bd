"""The queue-pipe benchmark: forwarding against bare aio-pika, end to end against Celery.

    python -m bench.pipes [--items 100000] [--window 1000]

Needs the local RabbitMQ (and Redis, Celery's result backend for the chord) and the bench
extra (``pip install -e '.[bench]'``). Starts its own Temporal dev server.

- forwarding: a job of ``items`` to a target queue nobody consumes, with an in-flight window
  as large as the job, timed until every task message is confirmed; against a bare aio-pika
  loop publishing the same messages with confirms, ``publish_window`` at a time.
- end to end: a job of ``items`` through the target queue, the reference worker and the
  tracking pipe to Completed, with the in-flight window given; against a Celery chord of
  ``items`` no-op tasks on the same broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import psutil
from temporalio.client import Client

from bench.cpu import CpuMeter, cpu_line, temporal_server
from bench.database import scratch_database
from jobservice.jobs.definition import JobDefinition
from jobservice.jobs.status import JobStatus
from jobservice.messages import TaskMessage
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer
from jobservice.processes.worker import run_worker
from jobservice.service.job_service import JobService
from jobservice.settings import (
    EngineSettings,
    RabbitSettings,
    Settings,
    TemporalSettings,
    get_settings,
)
from jobservice.temporal.connection import connect

ROOT = Path(__file__).parents[1]


def _name(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


async def _queue_depth(channel: aio_pika.abc.AbstractChannel, queue: str) -> int:
    underlay = await channel.get_underlay_channel()
    return (await underlay.queue_declare(queue, passive=True)).message_count or 0


async def bare_publish(rabbit: RabbitSettings, items: int) -> float:
    """Messages/s of a plain confirmed publish loop, the same window and message size."""
    queue = _name("bare")
    body = json.dumps(
        TaskMessage(
            job_task_id=f"bench:bare.1.{items}",
            task_classifier="jobservice.item",
            task_api_version=1,
            task_data={"item": items, "params": {}},
            to=queue,
            correlation_id="bench:bare",
            tracking_pipe=rabbit.tracking_pipe,
        ).to_dict()
    ).encode()
    connection = await aio_pika.connect_robust(rabbit.url.get_secret_value())
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True)
        window = asyncio.Semaphore(rabbit.publish_window)

        async def one() -> None:
            async with window:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue,
                )

        started = time.perf_counter()
        for start in range(0, items, 5000):
            await asyncio.gather(*(one() for _ in range(min(5000, items - start))))
        seconds = time.perf_counter() - started
        await channel.queue_delete(queue)
    return items / seconds


@asynccontextmanager
async def scratch_queue(
    rabbit: RabbitSettings, prefix: str
) -> AsyncIterator[tuple[aio_pika.abc.AbstractChannel, str]]:
    """A durable queue for one measurement, deleted afterwards, and a channel to it."""
    queue = _name(prefix)
    connection = await aio_pika.connect_robust(rabbit.url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True)
        try:
            yield channel, queue
        finally:
            await channel.queue_delete(queue)


async def job_forwarding(service: JobService, rabbit: RabbitSettings, items: int) -> float:
    """Items/s of a job publishing to a queue nobody consumes."""
    async with scratch_queue(rabbit, "forward") as (channel, queue):
        job_id = _name("forwarding")
        started = time.perf_counter()
        await service.submit(
            job_id,
            JobDefinition(batch_type="range", batch_definition=f"0-{items}", target_pipe=queue),
        )
        while await _queue_depth(channel, queue) < items:  # noqa: ASYNC110 - polls the broker
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        await service.cancel(job_id)
    return items / seconds


@asynccontextmanager
async def reference_worker(queue: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The example external worker consuming ``queue``, in a process of its own."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "reference_worker.py"),
        "--queue",
        queue,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        await worker.wait()


def pipeline_processes(worker_pid: int) -> dict[str, psutil.Process]:
    """The processes an end-to-end job runs on: this one (the jobservice worker and tracking
    consumer), the reference worker, RabbitMQ and the Temporal dev server."""
    processes = {
        "jobservice worker": psutil.Process(),
        "reference worker": psutil.Process(worker_pid),
    }
    server = temporal_server()
    if server is not None:
        processes["Temporal"] = server
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "beam.smp":
            processes["RabbitMQ"] = process
    return processes


async def job_end_to_end(
    service: JobService, rabbit: RabbitSettings, items: int
) -> tuple[float, dict[str, float]]:
    """Items/s of a job through the reference worker and the tracking pipe to Completed, and
    the CPU microseconds per item each process spent."""
    async with scratch_queue(rabbit, "e2e") as (_, queue), reference_worker(queue) as worker:
        job_id = _name("e2e")
        meter = CpuMeter(pipeline_processes(worker.pid))
        started = time.perf_counter()
        await service.submit(
            job_id,
            JobDefinition(batch_type="range", batch_definition=f"0-{items}", target_pipe=queue),
        )
        job = await service.wait(job_id, interval=0.1)
        seconds = time.perf_counter() - started
        cpu = meter.per_item(items)
    if job.status is not JobStatus.COMPLETED or job.counts.completed != items:
        raise SystemExit(f"the job ended {job.status} with {job.counts}; the figures are void")
    return items / seconds, cpu


def celery_chord(items: int) -> float:
    """Tasks/s of a Celery chord of no-op tasks on the same RabbitMQ, Redis as the backend."""
    queue = _name("celery")
    env = {**os.environ, "BENCH_CELERY_QUEUE": queue}
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker",
            "--concurrency", "2", "--loglevel", "WARNING", "-Q", queue, "--without-gossip",
            "--without-mingle", "--without-heartbeat",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        runner = subprocess.run(
            [sys.executable, "-m", "bench.celery_app", str(items)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return float(runner.stdout.strip().splitlines()[-1])


async def _measure(
    client: Client, settings: Settings, items: int, window: int, end_to_end_only: bool
) -> tuple[float, dict[str, float], float, float, float]:
    """End to end (items/s, CPU per item), and unless skipped Celery, forwarding and the
    bare loop."""
    rabbit = settings.rabbitmq
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(client, stop, settings=settings))
    try:
        # End to end and Celery first, on a quiet broker: the forwarding runs leave 200,000
        # messages behind for RabbitMQ to clear away.
        engine = EngineSettings(in_flight_window=window)
        end_to_end, cpu = await job_end_to_end(
            JobService(client, settings=settings.model_copy(update={"engine": engine})),
            rabbit,
            items,
        )
        forwarding = bare = chord = 0.0
        if not end_to_end_only:
            chord = await asyncio.to_thread(celery_chord, items)
            wide = settings.engine.model_copy(update={"in_flight_window": items * 2})
            forwarding = await job_forwarding(
                JobService(client, settings=settings.model_copy(update={"engine": wide})),
                rabbit,
                items,
            )
            bare = await bare_publish(rabbit, items)
    finally:
        stop.set()
        await worker
    return end_to_end, cpu, chord, forwarding, bare


async def main(items: int, window: int, end_to_end_only: bool = False) -> None:
    rabbit = RabbitSettings(tracking_pipe=_name("tracking"), dead_letter_pipe=_name("dead"))
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            temporal = TemporalSettings(address=server.address, task_queue=_name("queue"))
            client = await connect(temporal)
            settings = Settings(temporal=temporal, rabbitmq=rabbit, database=database)
            end_to_end, cpu, chord, forwarding, bare = await _measure(
                client, settings, items, window, end_to_end_only
            )
    if end_to_end_only:
        print(f"end to end {items:,} items, in-flight window {window:,}: {end_to_end:,.0f} items/s")
        print(cpu_line(cpu))
        return
    print(f"forwarding {items:,} items: job {forwarding:,.0f} items/s, bare aio-pika loop "
          f"{bare:,.0f} msgs/s, ratio {forwarding / bare:.2f} (target >= 0.8)")  # fmt: skip
    print(f"end to end {items:,} items, in-flight window {window:,}: job {end_to_end:,.0f} "
          f"items/s, Celery chord {chord:,.0f} tasks/s, ratio {end_to_end / chord:.1f}x "
          "(target >= 3x)")  # fmt: skip
    print(cpu_line(cpu))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--end-to-end-only", action="store_true", help="skip the baselines")
    arguments = parser.parse_args()
    eventloop.run(main(arguments.items, arguments.window, arguments.end_to_end_only))
