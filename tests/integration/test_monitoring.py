"""Health, readiness and metrics of real ``jobservice worker`` and ``jobservice tracking``
processes: live at once, ready once they do their work, counting what they did, and no longer
ready once told to stop."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest
from aio_pika.abc import AbstractChannel
from prometheus_client import REGISTRY
from temporalio.worker import Worker

from jobservice.jobs.status import JobStatus
from jobservice.processes.devserver import free_port
from jobservice.rabbitmq.broker import Broker
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from jobservice.tracking.lag import watch_pipe_length
from tests.conftest import unique
from tests.integration import processes
from tests.integration.rabbit import publish, take
from tests.integration.support import eventually, job
from tests.scrape import sample, scrape

ITEMS = 1200


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        yield client


def _monitored(
    settings: Settings, command: str, temporal_metrics_port: int = 0, **env: str
) -> tuple[subprocess.Popen[str], str]:
    """``jobservice <command>`` serving its endpoints on a port of its own, and their URL."""
    port = free_port()
    process = processes.start(
        settings, command, extra_env={**processes.monitor_env(port, temporal_metrics_port), **env}
    )
    return process, f"http://127.0.0.1:{port}"


async def _answer(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        return await http.get(url)
    except httpx.TransportError:
        return None  # not listening (yet, or any more)


def _running(process: subprocess.Popen[str]) -> None:
    """Fail, with what it wrote, if ``process`` has exited."""
    code = process.poll()
    assert code is None, f"exited {code}: {process.stderr.read() if process.stderr else ''}"


async def _ready(http: httpx.AsyncClient, url: str, process: subprocess.Popen[str]) -> None:
    async def ready() -> bool:
        _running(process)
        response = await _answer(http, f"{url}/readyz")
        return response is not None and response.status_code == 200

    await eventually(ready, within=60)


async def _stopped(process: subprocess.Popen[str]) -> int:
    try:
        return await asyncio.to_thread(process.wait, 30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


async def _killed(process: subprocess.Popen[str]) -> None:
    """Clean-up only: a process a failed test left running is killed; nothing is asserted,
    so the test's own failure is the one reported."""
    if process.poll() is None:
        process.kill()
        await asyncio.to_thread(process.wait)


async def test_a_worker_process_is_ready_counts_its_items_and_stops_being_ready_on_sigterm(
    service: JobService, settings: Settings, rabbit: AbstractChannel, http: httpx.AsyncClient
) -> None:
    # Given a worker process, with its tracking consumer, serving its endpoints
    worker, url = _monitored(settings, "worker", temporal_metrics_port=free_port())
    try:
        await _ready(http, url, worker)
        assert (await http.get(f"{url}/healthz")).status_code == 200

        # When it runs a job
        job_id = unique("monitored")
        await service.submit(job_id, job("range", f"0-{ITEMS}", "local:noop"))
        done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
        assert done.status is JobStatus.COMPLETED

        # Then its metrics count the job's items and the job, and carry Temporal's own
        text = await scrape(http, url)
        completed = {"outcome": "completed", "target_pipe": "local:noop"}
        assert sample(text, "jobservice_items_total", **completed) == ITEMS
        assert sample(text, "jobservice_items_total", outcome="failed") is None
        assert sample(text, "jobservice_jobs_finished_total", status="Completed") == 1
        chunks = sample(text, "jobservice_chunk_duration_seconds_count")
        assert chunks is not None and chunks >= ITEMS / settings.engine.chunk_size
        assert any(line.startswith("temporal_") for line in text.splitlines()), text
        assert job_id not in text

        # When it is told to stop with a job in flight
        slow = unique("draining")
        await service.submit(
            slow, job("range", "0-100000", "local:sleep", task_message_params={"sleepMillis": "1"})
        )

        async def started() -> bool:
            return (await service.get(slow)).counts.completed > 0

        await eventually(started, within=60)
        worker.send_signal(signal.SIGTERM)

        # Then it is no longer ready while it drains, and then it exits
        reasons = []
        while (response := await _answer(http, f"{url}/readyz")) is not None:
            reasons.append((response.status_code, response.json().get("reason")))
            await asyncio.sleep(0.02)
        assert (503, "shutting down") in reasons, reasons
        assert await _stopped(worker) == 0
    finally:
        await _killed(worker)


async def test_a_worker_whose_tracking_consumer_cannot_read_is_not_ready(
    settings: Settings, http: httpx.AsyncClient
) -> None:
    # Given a worker process whose RabbitMQ is at a port nothing listens on
    worker, url = _monitored(
        settings, "worker", JOBSERVICE_RABBITMQ__URL="amqp://guest:guest@127.0.0.1:1/"
    )
    expected = (
        f"not consuming the tracking pipe {settings.rabbitmq.tracking_pipe!r} on RabbitMQ at "
        "127.0.0.1:1"
    )

    async def only_tracking_missing() -> bool:
        _running(worker)
        response = await _answer(http, f"{url}/readyz")
        return response is not None and response.json().get("reason") == expected

    try:
        # Then it is live, its worker polls, and it is not ready, saying why
        await eventually(only_tracking_missing, within=60)
        assert (await http.get(f"{url}/readyz")).status_code == 503
        assert (await http.get(f"{url}/healthz")).status_code == 200

        # And it stops cleanly when told to
        worker.send_signal(signal.SIGTERM)
        assert await _stopped(worker) == 0
    finally:
        await _killed(worker)


async def test_a_tracking_process_counts_results_duplicates_and_dead_letters(
    service: JobService,
    settings: Settings,
    worker_without_tracking: None,
    rabbit: AbstractChannel,
    target_queue: str,
    http: httpx.AsyncClient,
) -> None:
    # Given a tracking consumer of its own process, serving its endpoints
    tracking, url = _monitored(settings, "tracking", JOBSERVICE_MONITOR__LAG_INTERVAL_SECONDS="0.2")
    try:
        await _ready(http, url, tracking)

        # When a queue job's worker reports each of its items done
        job_id = unique("tracked")
        await service.submit(job_id, job("range", "0-5", target_queue))
        tasks = await take(rabbit, target_queue, 5, within=60)
        results = [{**json.loads(m.body), "taskStatus": "RESULT_SUCCESS"} for m in tasks]
        for task in tasks:
            await task.ack()
        for result in results:
            await publish(rabbit, settings.rabbitmq.tracking_pipe, result)
        done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
        assert (done.status, done.counts.completed) == (JobStatus.COMPLETED, 5)

        # and then once more for one of them, and with a message that is not JSON
        await publish(rabbit, settings.rabbitmq.tracking_pipe, results[0])
        await publish(rabbit, settings.rabbitmq.tracking_pipe, b"not json")

        # Then its metrics count each
        async def counted() -> bool:
            _running(tracking)
            try:
                text = await scrape(http, url)
            except httpx.TransportError:
                return False  # it stopped answering: the next round says how it ended
            return (
                sample(text, "jobservice_tracking_reports_for_ended_batches_total") == 1
                and sample(text, "jobservice_tracking_dead_letters_total") == 1
                and sample(text, "jobservice_tracking_pipe_messages") == 0
            )

        await eventually(counted, within=30)
        text = await scrape(http, url)
        assert sample(text, "jobservice_tracking_reports_recorded_total", status="Complete") == 5
        assert sample(text, "jobservice_messages_published_total") == 1  # the dead letter
        assert sample(text, "jobservice_publisher_confirms_total", outcome="confirmed") == 1
        await take(rabbit, settings.rabbitmq.dead_letter_pipe, 1)

        # And it stops cleanly when told to
        tracking.send_signal(signal.SIGTERM)
        assert await _stopped(tracking) == 0
    finally:
        await _killed(tracking)


async def test_the_tracking_pipes_length_is_read_into_its_gauge(
    settings: Settings, rabbit: AbstractChannel
) -> None:
    # Given messages waiting on the tracking pipe, and nobody consuming them
    pipe = settings.rabbitmq.tracking_pipe
    await rabbit.declare_queue(pipe, durable=True)
    for number in range(3):
        await publish(rabbit, pipe, {"number": number})
    broker = Broker(settings.rabbitmq)
    stop = asyncio.Event()
    watching = asyncio.create_task(watch_pipe_length(broker, stop, 0.1))

    def length() -> float | None:
        return REGISTRY.get_sample_value("jobservice_tracking_pipe_messages")

    async def reads(expected: int) -> bool:
        return length() == expected

    try:
        # Then the gauge reads their number, and follows it
        await eventually(lambda: reads(3), within=10)
        await publish(rabbit, pipe, {"number": 3})
        await eventually(lambda: reads(4), within=10)
    finally:
        stop.set()
        await watching
        await broker.close()


async def test_a_cancelled_job_is_counted_as_finished_once(
    service: JobService, worker: Worker
) -> None:
    # Given a running job, whose row reads Cancelled from the cancel on, while its tree stops
    def finished() -> float:
        labels = {"status": "Cancelled"}
        return REGISTRY.get_sample_value("jobservice_jobs_finished_total", labels) or 0

    before = finished()
    job_id = unique("cancelled")
    await service.submit(
        job_id, job("range", "0-100000", "local:sleep", task_message_params={"sleepMillis": "1"})
    )

    async def started() -> bool:
        return (await service.get(job_id)).counts.completed > 0

    await eventually(started, within=60)

    # When it is cancelled
    assert (await service.cancel(job_id)).status is JobStatus.CANCELLED

    # Then it is counted once, when its workflow writes its last state
    async def counted() -> bool:
        return finished() == before + 1

    await eventually(counted, within=30)
    await asyncio.sleep(1)
    assert finished() == before + 1
