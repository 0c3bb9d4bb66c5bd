"""Items to a RabbitMQ target pipe, results back on the tracking pipe, counted exactly once."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from aio_pika.abc import AbstractChannel
from temporalio.client import Client

from jobservice.errors import InvalidJobError, JobNotFoundError
from jobservice.jobs.status import JobStatus
from jobservice.processes.worker import run_worker
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from jobservice.tracking.consumer import REASON_HEADER
from tests.conftest import unique
from tests.integration.rabbit import depth, publish, take
from tests.integration.support import eventually, job, run_to_end


async def test_task_messages_follow_the_contract_and_results_count_once(
    service: JobService,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a job of 300 items to a target queue nobody consumes yet
    job_id = unique("contract")
    await service.submit(
        job_id, job("range", "0-300", target_queue, task_message_params={"k": "v"})
    )

    # When an external worker takes every task message
    tasks = await take(rabbit, target_queue, 300)
    bodies = [json.loads(m.body) for m in tasks]
    first = next(b for b in bodies if b["tracking"]["jobTaskId"] == f"default:{job_id}.1")
    assert first["version"] == 3
    assert first["taskStatus"] == "NEW_TASK"
    assert first["to"] == target_queue
    assert first["taskData"] == {"item": 0, "params": {"k": "v"}}
    assert first["tracking"]["trackingPipe"] == settings.rabbitmq.tracking_pipe
    assert first["tracking"]["trackTo"] == target_queue
    assert {b["tracking"]["jobTaskId"] for b in bodies} == {
        f"default:{job_id}.{n}" for n in range(1, 301)
    }
    assert all(m.delivery_mode == 2 for m in tasks)  # persistent

    async def all_in_flight() -> bool:
        return (await service.get(job_id)).counts.in_flight == 300

    await eventually(all_in_flight, within=10)

    # and reports every result twice, beside messages nobody can read
    for body in bodies:
        result = {**body, "taskStatus": "RESULT_SUCCESS", "taskData": {"ok": True}}
        await publish(rabbit, settings.rabbitmq.tracking_pipe, result)
        await publish(rabbit, settings.rabbitmq.tracking_pipe, result)
    unknown_job = {**first["tracking"], "jobTaskId": "default:no-such-job.1"}
    garbled: list[bytes | dict[str, object]] = [
        b"not json",
        {"taskStatus": "RESULT_SUCCESS", "tracking": {}},
        {**first, "taskStatus": "SOMETHING_ELSE"},
        {**first, "taskStatus": "RESULT_SUCCESS", "tracking": unknown_job},
    ]
    for body in garbled:
        await publish(rabbit, settings.rabbitmq.tracking_pipe, body)
    for message in tasks:
        await message.ack()

    # Then the job completes with every item counted once
    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (300, 300, 0)
    assert done.counts.in_flight == 0
    # and the unreadable messages wait in the dead-letter queue, each with its reason
    dead = await take(rabbit, settings.rabbitmq.dead_letter_pipe, 4)
    reasons = sorted(str(m.headers[REASON_HEADER]) for m in dead)
    assert reasons[0].startswith("no tracking.jobTaskId")
    assert reasons[1].startswith("not JSON")
    assert reasons[2] == "unknown job 'job/default/no-such-job'"
    assert reasons[3].startswith("unknown taskStatus 'SOMETHING_ELSE'")


@pytest.mark.worker_args("--duplicate")
async def test_the_reference_worker_completes_a_recursive_job(
    service: JobService,
    tracking_worker: None,
    reference_worker: subprocess.Popen[str],
    target_queue: str,
    rabbit: AbstractChannel,
) -> None:
    # Given a worker that reports every result twice
    done = await run_to_end(service, unique("reference"), job("range", "0-5000/1000", target_queue))

    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (5000, 5000, 0)
    assert await depth(rabbit, target_queue) == 0


@pytest.mark.worker_args("--fail-every", "10")
@pytest.mark.parametrize(
    ("tolerance", "status"), [("20", JobStatus.COMPLETED), (None, JobStatus.FAILED)]
)
async def test_worker_exceptions_are_recorded_and_fail_the_job_per_its_tolerance(
    service: JobService,
    tracking_worker: None,
    reference_worker: subprocess.Popen[str],
    target_queue: str,
    tolerance: str | None,
    status: JobStatus,
) -> None:
    done = await run_to_end(
        service,
        unique("exceptions"),
        job("range", "0-200", target_queue, failure_tolerance=tolerance),
    )

    assert done.status is status
    item_failures = [f for f in done.failures if f.failure_source == "worker reference-worker"]
    assert item_failures
    assert item_failures[0].failure_message.startswith("RESULT_EXCEPTION: item ")
    assert "is a multiple of 10" in item_failures[0].failure_message
    if status is JobStatus.COMPLETED:
        assert (done.counts.completed, done.counts.failed) == (180, 20)


async def test_a_missing_target_queue_is_refused_naming_it(service: JobService) -> None:
    missing, job_id = unique("missing"), unique("missing")

    with pytest.raises(InvalidJobError, match=f"target queue {missing!r} does not exist"):
        await service.submit(job_id, job("range", "0-10", missing))

    with pytest.raises(JobNotFoundError):
        await service.get(job_id)  # nothing was accepted


async def test_a_missing_target_queue_is_declared_when_the_settings_say_so(
    client: Client,
    settings: Settings,
    rabbit: AbstractChannel,
    owned_queues: list[str],
) -> None:
    declaring = settings.model_copy(
        update={"rabbitmq": settings.rabbitmq.model_copy(update={"declare_target_queues": True})}
    )
    queue = unique("declared")
    owned_queues.append(queue)
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(client, stop, settings=declaring))
    try:
        await JobService(client, settings=declaring).submit(
            unique("declared"), job("range", "0-10", queue)
        )
        assert len(await take(rabbit, queue, 10)) == 10
    finally:
        stop.set()
        await running


@pytest.mark.worker_args("--reports", "--fail-every", "10")
async def test_a_worker_that_reports_as_the_reference_framework_does_completes_a_job(
    service: JobService,
    tracking_worker: None,
    reference_worker: subprocess.Popen[str],
    target_queue: str,
    rabbit: AbstractChannel,
) -> None:
    # Given a worker that reports Progress, then Complete or Failed, in TrackingReportTasks
    definition = job("range", "0-3000/1000", target_queue, failure_tolerance="10%")
    done = await run_to_end(service, unique("reports"), definition)

    # Then every item is counted once, by what its report said
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (3000, 2700, 300)
    assert done.percentage_complete == 100
    failure = done.failures[0]
    assert failure.failure_source == "reference-worker"
    assert failure.failure_id.startswith(f"default:{done.id}.")
    assert failure.failure_message.startswith("WORKER_FAILED: item ")
    assert failure.failure_message.endswith("is a multiple of 10")
    assert await depth(rabbit, target_queue) == 0
