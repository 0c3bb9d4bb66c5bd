"""Queue target pipes under pause, cancel, a dead consumer, a silent worker, a missing broker."""

from __future__ import annotations

import asyncio
import signal

import pytest
from aio_pika.abc import AbstractChannel
from prometheus_client import Counter
from pydantic import SecretStr
from temporalio.client import Client, WorkflowExecutionStatus

from jobservice.jobs.status import DEFAULT_PARTITION, JobStatus
from jobservice.jobs.taskids import workflow_id
from jobservice.metrics import TRACKING_ENDED_BATCH_REPORTS, TRACKING_REPORTS
from jobservice.processes.worker import run_worker
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings, Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.processes import start_reference_worker
from tests.integration.rabbit import NewQueue, depth, publish, take
from tests.integration.support import eventually, job, run_to_end

WINDOW = 100


@pytest.fixture
def engine() -> EngineSettings:
    """A window of 100 items in flight, out of jobs of 1,000."""
    return EngineSettings(chunk_size=50, in_flight_window=WINDOW, progress_interval_seconds=0.2)


def counted(counter: Counter) -> float:
    """What ``counter`` has counted in this process so far, over all its labels."""
    return sum(
        sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def stop_process(process: object) -> None:
    assert hasattr(process, "terminate") and hasattr(process, "wait")
    process.terminate()
    await asyncio.to_thread(process.wait, 30)


async def test_the_window_bounds_what_is_out_and_pause_stops_forwarding(
    service: JobService, tracking_worker: None, rabbit: AbstractChannel, target_queue: str
) -> None:
    # Given a job of 1,000 items and no worker: only a window of them goes out
    job_id = unique("window")
    await service.submit(job_id, job("range", "0-1000", target_queue))

    async def window_full() -> bool:
        return await depth(rabbit, target_queue) == WINDOW

    await eventually(window_full)
    await asyncio.sleep(1.5)
    assert await depth(rabbit, target_queue) == WINDOW

    # When the job is paused and a worker starts, what was out comes back, nothing more goes
    assert (await service.pause(job_id)).status is JobStatus.PAUSED
    worker = start_reference_worker(target_queue)
    try:

        async def drained() -> bool:
            view = await service.get(job_id)
            return view.counts.completed == WINDOW and view.counts.in_flight == 0

        await eventually(drained)
        await asyncio.sleep(1.5)
        held = await service.get(job_id)
        assert (held.status, held.counts.completed) == (JobStatus.PAUSED, WINDOW)
        assert await depth(rabbit, target_queue) == 0

        # Then resume finishes the job with every item counted once
        await service.resume(job_id)
        done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
    finally:
        await stop_process(worker)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.completed, done.counts.failed) == (1000, 0)


@pytest.mark.parametrize("engine", [EngineSettings(chunk_size=40, in_flight_window=WINDOW)])
async def test_a_job_smaller_than_its_window_goes_out_whole_with_nobody_consuming(
    service: JobService, tracking_worker: None, rabbit: AbstractChannel, target_queue: str
) -> None:
    # 40 + 40 go out; the last 10 fit the window although less than half of it is free
    await service.submit(unique("small"), job("range", "0-90", target_queue))

    async def all_out() -> bool:
        return await depth(rabbit, target_queue) == 90

    await eventually(all_out, within=20)


async def test_cancel_stops_forwarding_and_late_results_change_nothing(
    service: JobService,
    settings: Settings,
    client: Client,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a queue job with its window of items out, with a worker that has not answered
    job_id = unique("cancel")
    await service.submit(job_id, job("range", "0-1000", target_queue))
    tasks = await take(rabbit, target_queue, WINDOW)

    # When the job is cancelled, and then the worker answers every item it had
    await service.cancel(job_id)
    cancelled = await asyncio.wait_for(service.wait(job_id, interval=0.2), 30)

    async def final_counts() -> bool:  # the workflow's last write follows the service's
        nonlocal cancelled
        cancelled = await service.get(job_id)
        return cancelled.counts.total > 0

    await eventually(final_counts, within=30)
    described = await client.get_workflow_handle(workflow_id(DEFAULT_PARTITION, job_id)).describe()
    assert described.status is WorkflowExecutionStatus.CANCELED
    ended_before, recorded_before = counted(TRACKING_ENDED_BATCH_REPORTS), counted(TRACKING_REPORTS)
    for message in tasks:
        body = message.body.replace(b'"NEW_TASK"', b'"RESULT_SUCCESS"')
        await publish(rabbit, settings.rabbitmq.tracking_pipe, body)
        await message.ack()

    # Then the tracking consumer takes every answer in as one for a batch that has ended
    async def all_taken_in() -> bool:
        return counted(TRACKING_ENDED_BATCH_REPORTS) - ended_before >= len(tasks)

    await eventually(all_taken_in, within=30)
    assert counted(TRACKING_ENDED_BATCH_REPORTS) - ended_before == len(tasks)
    assert counted(TRACKING_REPORTS) == recorded_before

    # and they change nothing: the counts stand, no task went out after the cancel, and
    # nothing is left on the tracking pipe or dead-lettered
    assert cancelled.status is JobStatus.CANCELLED
    after = await service.get(job_id)
    assert after.status is JobStatus.CANCELLED
    assert after.counts == cancelled.counts
    assert after.counts.completed == 0
    assert await depth(rabbit, target_queue) == 0
    assert await depth(rabbit, settings.rabbitmq.tracking_pipe) == 0
    assert await depth(rabbit, settings.rabbitmq.dead_letter_pipe) == 0


async def test_a_tracking_consumer_killed_mid_job_loses_nothing(
    service: JobService,
    settings: Settings,
    worker_without_tracking: None,
    target_queue: str,
    rabbit: AbstractChannel,
) -> None:
    # Given the tracking consumer as its own process, and a worker answering every item
    tracking = processes.start(settings, "tracking")
    worker = start_reference_worker(target_queue)
    job_id = unique("consumer")
    await service.submit(job_id, job("range", "0-3000/1000", target_queue))
    try:

        async def underway() -> bool:
            return (await service.get(job_id)).counts.completed >= 300

        await eventually(underway)
        # When the consumer dies without warning mid-job: results pile up in the tracking pipe
        # with no one to record them, and the job stands part done, its window full
        tracking.send_signal(signal.SIGKILL)
        await asyncio.to_thread(tracking.wait)

        async def results_waiting() -> bool:
            return await depth(rabbit, settings.rabbitmq.tracking_pipe) > 0

        await eventually(results_waiting, within=30)
        killed = await service.get(job_id)
        assert killed.status is JobStatus.ACTIVE
        assert killed.counts.completed < 3000
        # and another consumer takes over
        tracking = processes.start(settings, "tracking")
        done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 90)
    finally:
        await stop_process(worker)
        await stop_process(tracking)

    # Then every item is counted, once
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (3000, 3000, 0)


async def test_results_are_forwarded_to_the_queue_their_to_names(
    service: JobService,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
    new_queue: NewQueue,
) -> None:
    results = await new_queue("results")
    worker = start_reference_worker(target_queue, "--result-queue", results)
    try:
        done = await run_to_end(service, unique("forward"), job("range", "0-100", target_queue))
    finally:
        await stop_process(worker)

    assert done.status is JobStatus.COMPLETED
    forwarded = await take(rabbit, results, 100)
    assert all(b'"RESULT_SUCCESS"' in m.body for m in forwarded)


async def test_items_without_a_result_fail_after_the_result_timeout(
    client: Client, settings: Settings, tracking_worker: None, target_queue: str
) -> None:
    engine = settings.engine.model_copy(update={"result_timeout_seconds": 2.0})
    service = JobService(client, settings=settings.model_copy(update={"engine": engine}))

    done = await run_to_end(service, unique("silent"), job("range", "0-10", target_queue))

    assert done.status is JobStatus.FAILED
    assert done.counts.failed >= 1
    assert done.counts.in_flight == 0
    silent = [f for f in done.failures if f.failure_message == "no result for the item within 2 s"]
    assert silent and silent[0].failure_source == f"target pipe {target_queue!r}"


async def test_a_job_waits_for_an_unreachable_broker_and_then_completes(
    client: Client,
    service: JobService,
    settings: Settings,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a worker whose RabbitMQ cannot be reached
    unreachable = settings.rabbitmq.model_copy(
        update={"url": SecretStr("amqp://guest:guest@127.0.0.1:1/")}
    )
    stop = asyncio.Event()
    bad = asyncio.create_task(
        run_worker(client, stop, settings=settings.model_copy(update={"rabbitmq": unreachable}))
    )
    job_id = unique("waiting")
    await service.submit(job_id, job("range", "0-200", target_queue))

    async def says_why() -> bool:
        return "cannot be reached" in ((await service.get(job_id)).status_reason or "")

    try:
        await eventually(says_why, within=30)
        assert (await service.get(job_id)).status is JobStatus.ACTIVE
    finally:
        stop.set()
        await bad

    # When a worker that reaches RabbitMQ takes over, the job completes with nothing lost
    stop = asyncio.Event()
    good = asyncio.create_task(run_worker(client, stop, settings=settings))
    worker = start_reference_worker(target_queue)
    try:
        done = await asyncio.wait_for(service.wait(job_id, interval=0.3), 90)
    finally:
        stop.set()
        await good
        await stop_process(worker)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.completed, done.counts.failed) == (200, 0)
    assert done.status_reason is None
