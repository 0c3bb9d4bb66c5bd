"""What a client written against the reference Job Service contract sends, and reads back.

Such a client (one generated from the reference swagger, say) sends every field of a new job,
those it leaves unset as null, may leave a task's ``targetPipe`` null, and reads times as epoch
milliseconds.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractChannel
from temporalio.worker import Worker

from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration.rabbit import publish, take
from tests.integration.support import API, job_body


def reference_body(task: dict[str, Any]) -> dict[str, Any]:
    """A new job as a generated client serialises it: every field, unset ones null."""
    return {
        "name": None,
        "description": None,
        "externalData": None,
        "task": task,
        "type": None,
        "parameters": None,
        "prerequisiteJobIds": None,
        "delay": None,
        "labels": None,
    }


def batch_task(target_pipe: str | None, **fields: Any) -> dict[str, Any]:
    task: dict[str, Any] = {**job_body(items=25)["task"], **fields}
    if target_pipe is None:
        task.pop("targetPipe")
    else:
        task["targetPipe"] = target_pipe
    return task


async def finished(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    for _ in range(600):
        job: dict[str, Any] = (await http.get(url)).json()
        if job["status"] in ("Completed", "Failed", "Cancelled"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not finish: {job}")


@pytest.mark.parametrize("target_pipe", ["null", "absent"])
async def test_a_batch_worker_task_without_a_target_pipe_runs_to_completion(
    http: httpx.AsyncClient, worker: Worker, partition: str, target_pipe: str
) -> None:
    # Given a BatchWorker task whose targetPipe is null, or left out, in a reference body
    task = batch_task(None) if target_pipe == "absent" else batch_task(None, targetPipe=None)
    url = f"{API}/partitions/{partition}/jobs/{unique('no-target')}"

    # When a reference client sends it
    created = await http.put(url, json=reference_body(task))

    # Then it is accepted, runs, and completes with all its items
    assert created.status_code == 201, created.text
    job = await finished(http, url)
    assert job["status"] == "Completed", job
    assert (job["counts"]["total"], job["counts"]["completed"]) == (25, 25)
    assert (job["labels"], job["name"]) == ({}, None)


async def test_the_same_job_with_null_or_absent_fields_is_the_same_job(
    http: httpx.AsyncClient, partition: str
) -> None:
    # Given a job sent once with null fields, and once with those fields left out
    url = f"{API}/partitions/{partition}/jobs/{unique('same')}"
    sent_null = await http.put(url, json=reference_body(batch_task(None, targetPipe=None)))
    sent_absent = await http.put(url, json={"task": batch_task(None)})

    # Then the second is the same job again, not a conflict
    assert (sent_null.status_code, sent_absent.status_code) == (201, 204), sent_absent.text


async def test_an_empty_target_pipe_is_refused(http: httpx.AsyncClient, partition: str) -> None:
    url = f"{API}/partitions/{partition}/jobs/{unique('empty-target')}"
    refused = await http.put(url, json=reference_body(batch_task("")))
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("task.targetPipe:"), refused.text
    assert "empty" in refused.json()["message"]
    assert (await http.get(url)).status_code == 404


async def test_null_and_blank_prerequisites_are_left_out(
    http: httpx.AsyncClient, worker: Worker, partition: str
) -> None:
    # Given prerequisites with null and blank ids among them, as the reference system allows
    url = f"{API}/partitions/{partition}/jobs/{unique('blank-prerequisites')}"
    body = {**reference_body(batch_task(None)), "prerequisiteJobIds": [None, "", "  "]}

    # Then the job waits for none of them, and completes
    assert (await http.put(url, json=body)).status_code == 201
    assert (await finished(http, url))["status"] == "Completed"


async def test_a_single_task_without_a_target_pipe_is_tracked_to_its_result(
    http: httpx.AsyncClient,
    service: JobService,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a task for a worker of another kind, whose output goes nowhere
    partition, job_id = unique("p"), unique("task")
    task = {
        "taskClassifier": "TextWorker",
        "taskApiVersion": 1,
        "taskData": {"text": "hello"},
        "taskDataEncoding": None,
        "taskPipe": target_queue,
        "targetPipe": None,
    }
    url = f"{API}/partitions/{partition}/jobs/{job_id}"
    assert (await http.put(url, json=reference_body(task))).status_code == 201

    # Then its task message names no trackTo
    [message] = await take(rabbit, target_queue, 1)
    body = json.loads(message.body)
    assert body["tracking"]["trackTo"] is None
    assert body["tracking"]["jobTaskId"] == f"{partition}:{job_id}.1"

    # When the worker reports its result, with no output to forward
    result = {**body, "taskStatus": "RESULT_SUCCESS", "to": None}
    await publish(rabbit, settings.rabbitmq.tracking_pipe, result)
    await message.ack()

    # Then the job is Completed
    done = await asyncio.wait_for(service.wait(job_id, partition=partition, interval=0.2), 60)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed) == (1, 1)


async def test_failure_times_are_epoch_milliseconds_as_create_times_are(
    http: httpx.AsyncClient, worker: Worker, partition: str
) -> None:
    # Given a job whose odd items fail
    url = f"{API}/partitions/{partition}/jobs/{unique('failing')}"
    body = job_body(items=4, target="local:fail-odd", failureTolerance="100%")
    assert (await http.put(url, json=body)).status_code == 201

    # Then its failures carry their time as the reference system does: epoch milliseconds
    job = await finished(http, url)
    assert job["failures"], job
    for failure in job["failures"]:
        assert isinstance(failure["failureTime"], int), failure
        assert job["createTime"] <= failure["failureTime"] <= job["lastUpdateTime"] + 1000
