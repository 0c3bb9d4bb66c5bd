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

from jobservice.db.store import JobStore
from jobservice.execution.job import NewJobRow
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration.rabbit import publish, take
from tests.integration.support import API, eventually, job_body


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


def text_task(queue: str) -> dict[str, Any]:
    """A task for a worker of another kind, sent to ``queue``, whose output goes nowhere."""
    return {
        "taskClassifier": "TextWorker",
        "taskApiVersion": 1,
        "taskData": {"text": "hello"},
        "taskDataEncoding": None,
        "taskPipe": queue,
        "targetPipe": None,
    }


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
    task = text_task(target_queue)
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


# -- answers a reference client or worker relies on -----------------------------------------


def _rows(store: JobStore, partition: str, count: int, **fields: Any) -> list[str]:
    """``count`` job rows of ``partition`` made straight in the job database (no workflows):
    what a list pages through."""
    ids = [f"row-{index:05d}" for index in range(count)]
    for job_id in ids:
        row = NewJobRow(
            partition_id=partition,
            job_id=job_id,
            definition={},
            definition_hash=job_id,
            **fields,
        )
        store.create(row, status=JobStatus.COMPLETED)
    return ids


async def test_a_limit_of_0_is_the_default_page_and_a_big_limit_is_served_whole(
    http: httpx.AsyncClient, job_store: JobStore, partition: str
) -> None:
    # Given 1,205 jobs in a partition
    ids = await asyncio.to_thread(_rows, job_store, partition, 1205)
    jobs = f"{API}/partitions/{partition}/jobs"

    # When a reference client asks for limit 0, and for pages bigger than 1,000
    default = await http.get(jobs, params={"limit": 0, "offset": 0, "sort": "jobId:asc"})
    big = await http.get(jobs, params={"limit": 5000, "offset": 0, "sort": "jobId:asc"})
    rest = await http.get(jobs, params={"limit": 1001, "offset": 200, "sort": "jobId:asc"})

    # Then 0 is the default page of 10, and a big page holds every job it asks for, whole
    assert default.status_code == 200, default.text
    assert [job["id"] for job in default.json()] == ids[:10]
    assert big.status_code == 200, big.text
    assert [job["id"] for job in big.json()] == ids
    assert [job["id"] for job in rest.json()] == ids[200:1201]


async def test_the_reference_sort_fields_are_known(
    http: httpx.AsyncClient, job_store: JobStore, partition: str
) -> None:
    await asyncio.to_thread(_rows, job_store, partition, 3)
    jobs = f"{API}/partitions/{partition}/jobs"
    for sort, first in [("jobId:desc", "row-00002"), ("jobId:asc", "row-00000")]:
        answer = await http.get(jobs, params={"sort": sort})
        assert answer.status_code == 200, answer.text
        assert answer.json()[0]["id"] == first
    for field in ("description", "externalData"):
        answer = await http.get(jobs, params={"sort": f"{field}:asc"})
        assert answer.status_code == 200, answer.text


async def test_a_paused_job_is_not_active_and_resuming_an_active_job_changes_nothing(
    http: httpx.AsyncClient, worker: Worker, partition: str
) -> None:
    # Given a running job, slow enough to be paused
    url = f"{API}/partitions/{partition}/jobs/{unique('paused')}"
    assert (await http.put(url, json=job_body(items=100_000, rateLimit=50))).status_code == 201

    async def active() -> bool:
        return bool((await http.get(url)).json()["status"] == "Active")

    await eventually(active)
    assert (await http.get(f"{url}/isActive")).json() is True

    # When it is resumed while Active (a button pressed twice), then paused
    assert (await http.post(f"{url}/resume")).status_code == 204
    assert (await http.get(url)).json()["status"] == "Active"
    assert (await http.post(f"{url}/pause")).status_code == 204

    # Then a paused job is not active, as the reference answers
    assert (await http.get(f"{url}/isActive")).json() is False
    await http.post(f"{url}/cancel")
    refused = await http.post(f"{url}/resume")
    assert refused.status_code == 400, refused.text
    assert "Cancelled" in refused.json()["message"]


async def test_status_answers_may_be_cached_as_the_reference_worker_framework_reads_them(
    http: httpx.AsyncClient, partition: str, settings: Settings
) -> None:
    url = f"{API}/partitions/{partition}/jobs/{unique('cached')}"
    assert (await http.put(url, json=job_body(items=5))).status_code == 201
    age = settings.api.status_cache_seconds
    for path in ("status", "isActive"):
        answer = await http.get(f"{url}/{path}")
        assert answer.headers["CacheableJobStatus"] == "true", path
        assert f"max-age={age}" in answer.headers["Cache-Control"], path


async def test_a_201_says_where_the_job_is_and_a_conflicting_put_is_a_403(
    http: httpx.AsyncClient, partition: str
) -> None:
    url = f"{API}/partitions/{partition}/jobs/{unique('located')}"
    created = await http.put(url, json=job_body(items=5))
    assert created.status_code == 201
    assert created.headers["Location"] == f"http://api{url}"
    conflict = await http.put(url, json=job_body(items=6))
    assert conflict.status_code == 403, conflict.text
    assert "already exists" in conflict.json()["message"]


async def test_ids_may_hold_spaces_and_an_encoded_slash_is_named(
    http: httpx.AsyncClient, worker: Worker
) -> None:
    partition = f"Acme Corp {unique('t')[-6:]}"
    url = f"{API}/partitions/{partition}/jobs/nightly run"
    assert (await http.put(url, json=job_body(items=5))).status_code == 201, partition
    listed = await http.get(f"{API}/partitions/{partition}/jobs")
    assert [job["id"] for job in listed.json()] == ["nightly run"]
    assert (await finished(http, url))["status"] == "Completed"

    for path, named in [
        (f"{API}/partitions/a%2Fb/jobs", "'a/b'"),
        (f"{API}/partitions/p/jobs/x%2Fy", "'x/y'"),
    ]:
        refused = await http.get(path)
        assert refused.status_code == 400, refused.text
        assert named in refused.json()["message"]
    tab = await http.get(f"{API}/partitions/a%09b/jobs")
    assert tab.status_code == 400
    assert "control" in tab.json()["message"]


async def test_an_empty_label_filter_filters_nothing_but_never_selects_all_to_cancel(
    http: httpx.AsyncClient, job_store: JobStore, partition: str
) -> None:
    await asyncio.to_thread(_rows, job_store, partition, 3)
    jobs = f"{API}/partitions/{partition}/jobs"
    listed = await http.get(jobs, params={"labelExist": "", "offset": -5})
    assert (listed.status_code, len(listed.json())) == (200, 3), listed.text
    counted = await http.get(f"{API}/partitions/{partition}/jobStats/count?labelExist=")
    assert (counted.status_code, counted.json()) == (200, 3)
    for action in ("cancel", "delete"):
        refused = await http.post(f"{jobs}:{action}", params={"labelExist": ""})
        assert refused.status_code == 400, refused.text


async def test_ping_answers_as_the_reference_does(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{API}/ping")).json() == {"success": True}


async def test_a_task_to_a_missing_queue_is_refused_as_a_batch_to_one_is(
    http: httpx.AsyncClient, partition: str
) -> None:
    missing = unique("no-such-queue")
    batch = job_body(items=5, target=missing)["task"]
    for body in (reference_body(text_task(missing)), reference_body(batch)):
        url = f"{API}/partitions/{partition}/jobs/{unique('to-nowhere')}"
        refused = await http.put(url, json=body)
        assert refused.status_code == 400, refused.text
        assert f"target queue {missing!r} does not exist" in refused.json()["message"]
        assert (await http.get(url)).status_code == 404


async def test_a_queue_name_the_amqp_client_cannot_use_is_a_400_naming_it(
    http: httpx.AsyncClient, partition: str
) -> None:
    # As schemathesis found it: a single task to the pipe "{" was a 500
    body = reference_body(text_task("{"))
    url = f"{API}/partitions/{partition}/jobs/{unique('curly')}"
    refused = await http.put(url, json=body)
    assert refused.status_code == 400, refused.text
    assert "targetPipe '{' is not a queue name" in refused.json()["message"]
    assert (await http.get(url)).status_code == 404
