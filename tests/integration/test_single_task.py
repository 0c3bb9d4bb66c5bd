"""A job whose task is not a BatchWorker task: one item, the task, sent to its taskPipe and
tracked to its result."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from aio_pika.abc import AbstractChannel
from temporalio.worker import Worker

from jobservice.jobs.definition import JobTask, NewJob
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import ApiSettings, Settings
from tests.conftest import unique
from tests.integration.handlers import RecordingHandler
from tests.integration.rabbit import publish, take
from tests.integration.support import API

PUBLIC_URL = "http://jobs.example:8080/"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test's settings, with the API's address as workers see it."""
    return settings.model_copy(update={"api": ApiSettings(public_url=PUBLIC_URL)})


async def test_a_task_goes_to_its_task_pipe_and_completes_with_its_result(
    http: httpx.AsyncClient,
    service: JobService,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a text task for a worker of another kind, submitted over HTTP
    partition, job_id = unique("p"), unique("task")
    task = {
        "taskClassifier": "TextWorker",
        "taskApiVersion": 2,
        "taskData": "héllo",
        "taskDataEncoding": "utf8",
        "taskPipe": target_queue,
        "targetPipe": "text-out",
    }
    url = f"{API}/partitions/{partition}/jobs/{job_id}"
    created = await http.put(url, json={"name": "one task", "task": task})
    assert created.status_code == 201, created.text

    # Then its task message waits on the task pipe, as a CAF worker reads it
    [message] = await take(rabbit, target_queue, 1)
    body = json.loads(message.body)
    assert (body["taskClassifier"], body["taskApiVersion"]) == ("TextWorker", 2)
    assert base64.b64decode(body["taskData"]).decode() == "héllo"
    assert body["to"] == target_queue
    tracking = body["tracking"]
    assert tracking["jobTaskId"] == f"{partition}:{job_id}.1"
    assert tracking["trackingPipe"] == settings.rabbitmq.tracking_pipe
    assert tracking["trackTo"] == "text-out"
    assert tracking["statusCheckUrl"] == (
        f"http://jobs.example:8080/job-service/v1/partitions/{partition}/jobs/{job_id}/status"
    )

    # When the worker reports its result, the job is Completed with its one item
    await publish(rabbit, settings.rabbitmq.tracking_pipe, {**body, "taskStatus": "RESULT_SUCCESS"})
    await message.ack()
    done = await asyncio.wait_for(service.wait(job_id, partition=partition, interval=0.2), 60)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed) == (1, 1)


async def test_a_task_that_raises_fails_the_job_with_its_details(
    service: JobService,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    job_id = unique("task")
    task = JobTask(
        task_classifier="Thumbnailer",
        task_api_version=1,
        task_data={"image": "cat.png"},
        task_pipe=target_queue,
        target_pipe="thumbnails",
    )
    await service.submit(job_id, NewJob(task=task))

    [message] = await take(rabbit, target_queue, 1)
    body = json.loads(message.body)
    assert body["taskData"] == {"image": "cat.png"}
    result = {**body, "taskStatus": "RESULT_EXCEPTION", "taskData": "cat.png: no such file"}
    await publish(rabbit, settings.rabbitmq.tracking_pipe, result)
    await message.ack()

    failed = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
    assert failed.status is JobStatus.FAILED
    assert any("cat.png: no such file" in f.failure_message for f in failed.failures)


async def test_a_task_for_a_local_handler_runs_in_the_worker(
    service: JobService, recorder: RecordingHandler, worker: Worker
) -> None:
    job_id = unique("task")
    encoded = base64.b64encode(b"\x00\x01binary").decode()
    task = JobTask(
        task_classifier="Bytes",
        task_api_version=1,
        task_data=encoded,
        task_data_encoding="base64",
        task_pipe="local:record",
        target_pipe="anywhere",
    )
    await service.submit(job_id, NewJob(task=task))

    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
    assert (done.status, done.counts.completed) == (JobStatus.COMPLETED, 1)
    assert recorder.seen == {encoded: 1}
    assert recorder.task_ids == [f"default:{job_id}.1"]
