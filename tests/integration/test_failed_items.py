"""Every failed item of a job is kept in the job database with its task message, and listed:
by the service, the REST API (paged, with the total), the Python client and the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx
import pytest
from aio_pika.abc import AbstractChannel
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.client import AsyncJobServiceClient
from jobservice.db import failures as ledger
from jobservice.db.store import JobStore
from jobservice.jobs.public import TOTAL_COUNT_HEADER
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration.rabbit import publish, take
from tests.integration.support import API, job, run_to_end
from tests.integration.test_tracking_reports import FAILURE, report, report_task


def odd_task_ids(job_id: str, items: int, per_batch: int) -> set[str]:
    """The task ids of the odd numbers of ``range 0-items/per_batch``: sub-batch b (from 1)
    holds ``per_batch`` numbers, item n of it is numbered n + 1 (a leaf has no sub-batches)."""
    return {
        f"default:{job_id}.{value // per_batch + 1}.{value % per_batch + 1}"
        for value in range(1, items, 2)
    }


async def test_every_failed_item_is_kept_not_only_the_first_twenty(
    service: JobService, worker: Worker, job_store: JobStore, http: httpx.AsyncClient
) -> None:
    # Given 200 numbers in two batches, of which the 100 odd ones fail, all tolerated
    job_id = unique("kept")

    done = await run_to_end(
        service, job_id, job("range", "0-200/100", "local:fail-odd", failure_tolerance="100%")
    )

    # Then the job keeps its short summary, as the reference has it
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.completed, done.counts.failed) == (100, 100)
    assert len(done.failures) == 20
    # and every failed item is listed, each once, named by its task id
    page = await service.failures(job_id, limit=1000)
    assert page.total == 100
    assert {f.failure_id for f in page.failures} == odd_task_ids(job_id, 200, 100)
    assert all(f.failure_source == "item handler local:fail-odd" for f in page.failures)
    assert all("is odd" in f.failure_message for f in page.failures)
    # and each with the task message that sends it again
    rows = [item for p in ledger.failed_pages(job_store.engine, ("default", job_id)) for item in p]
    assert len(rows) == 100
    for row in rows:
        assert row.message is not None
        message = json.loads(row.message)
        assert message["tracking"]["jobTaskId"] == row.task_id
        assert message["taskClassifier"] and "taskData" in message

    # And the REST API pages through them, the total in a header, in a stable order
    listed: list[dict[str, object]] = []
    for offset in (0, 30, 60, 90):
        response = await http.get(
            f"{API}/partitions/default/jobs/{job_id}/failures",
            params={"limit": 30, "offset": offset},
        )
        assert response.status_code == 200, response.text
        assert response.headers[TOTAL_COUNT_HEADER] == "100"
        listed += response.json()
    assert [f["failureId"] for f in listed] == [f.failure_id for f in page.failures]
    assert set(listed[0]) == {"failureId", "failureTime", "failureSource", "failureMessage"}
    assert isinstance(listed[0]["failureTime"], int)


async def test_thousands_of_failures_page_and_stream_alike(
    service: JobService, worker: Worker, http: httpx.AsyncClient
) -> None:
    # Given a job with 2,500 failed items
    job_id = unique("many")
    done = await run_to_end(
        service, job_id, job("range", "0-5000/1000", "local:fail-odd", failure_tolerance="100%")
    )
    assert done.counts.failed == 2_500

    # When the client pages through them 1,000 at a time, and the service streams them all
    client = AsyncJobServiceClient(str(http.base_url), http=http)
    paged = [f.failure_id async for f in client.iter_job_failures(job_id, page_size=1000)]
    streamed = [f.failure_id async for f in service.all_failures(job_id)]
    first = await client.job_failures(job_id, limit=7, offset=2_495)

    # Then both hold every failure once, in the same order
    assert len(paged) == 2_500
    assert set(paged) == odd_task_ids(job_id, 5000, 1000)
    assert paged == streamed
    assert first.total == 2_500
    assert [f.failure_id for f in first.failures] == paged[2_495:]


async def test_items_a_plugin_could_not_produce_are_kept(
    service: JobService, worker: Worker, file_root: Path
) -> None:
    # Given a JSONL file with two lines that are not JSON
    (file_root / "bad.jsonl").write_text('{"a": 1}\nnot json\n{"a": 2}\n{oops\n')
    job_id = unique("badline")

    done = await run_to_end(
        service, job_id, job("jsonl", "bad.jsonl", "local:noop", failure_tolerance="2")
    )

    assert (done.status, done.counts.completed, done.counts.failed) == (JobStatus.COMPLETED, 2, 2)
    page = await service.failures(job_id)
    assert page.total == 2
    assert [f.failure_id for f in page.failures] == [f"default:{job_id}.2", f"default:{job_id}.4"]
    assert all(f.failure_source == "batch plugin 'jsonl'" for f in page.failures)


async def test_a_missing_job_has_no_failures_and_a_deleted_job_takes_its_own(
    service: JobService, worker: Worker, job_store: JobStore, http: httpx.AsyncClient
) -> None:
    missing = await http.get(f"{API}/partitions/default/jobs/{unique('none')}/failures")
    assert missing.status_code == 404

    job_id = unique("gone")
    await run_to_end(
        service, job_id, job("range", "0-20", "local:fail-odd", failure_tolerance="100%")
    )
    assert (await service.failures(job_id)).total == 10
    await service.delete(job_id)

    assert ledger.failed_total(job_store.engine, ("default", job_id)) == 0
    bad = await http.get(f"{API}/partitions/default/jobs/{job_id}/failures", params={"limit": 0})
    assert bad.status_code == 400


@pytest.mark.worker_args("--fail-every", "7")
async def test_failures_a_queue_worker_reports_are_kept_with_their_task_messages(
    service: JobService,
    job_store: JobStore,
    tracking_worker: None,
    reference_worker: subprocess.Popen[str],
    target_queue: str,
) -> None:
    # Given 300 numbers in three batches, sent to a worker that fails the multiples of 7
    job_id = unique("queued")

    done = await run_to_end(
        service, job_id, job("range", "0-300/100", target_queue, failure_tolerance="100%")
    )

    # Then every failure is listed, as the worker reported it, each item once
    multiples = [value for value in range(300) if value % 7 == 0]
    assert (done.counts.failed, done.counts.completed) == (len(multiples), 300 - len(multiples))
    page = await service.failures(job_id, limit=1000)
    assert page.total == len(multiples)
    expected = {f"default:{job_id}.{v // 100 + 1}.{v % 100 + 1}" for v in multiples}
    assert {f.failure_id for f in page.failures} == expected
    assert all(f.failure_source == "worker reference-worker" for f in page.failures)
    assert all("is a multiple of 7" in f.failure_message for f in page.failures)
    # and with the task message that went to the queue
    rows = [item for p in ledger.failed_pages(job_store.engine, ("default", job_id)) for item in p]
    for row in rows:
        assert row.message is not None
        message = json.loads(row.message)
        assert message["tracking"]["jobTaskId"] == row.task_id
        assert message["to"] == target_queue
        batch, number = (int(part) for part in row.task_id.split(".")[-2:])
        assert message["taskData"]["item"] == (batch - 1) * 100 + number - 1


async def test_failed_tracking_reports_and_silent_items_are_kept(
    client: Client,
    settings: Settings,
    job_store: JobStore,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given 50 items taken off their queue by a worker that reports 10 failed, twice, in
    # TrackingReportTasks, completes 30, and says nothing of the last 10
    engine = settings.engine.model_copy(update={"result_timeout_seconds": 5.0})
    service = JobService(client, settings=settings.model_copy(update={"engine": engine}))
    job_id = unique("reported")
    await service.submit(job_id, job("range", "0-50", target_queue, failure_tolerance="100%"))
    tasks = await take(rabbit, target_queue, 50)
    ids = sorted(
        (json.loads(m.body)["tracking"]["jobTaskId"] for m in tasks),
        key=lambda i: int(i.rsplit(".")[-1]),
    )
    failed, completed, silent = ids[:10], ids[10:40], ids[40:]
    tracking = settings.rabbitmq.tracking_pipe
    reports = report_task(*(report(i, "Failed", failure=FAILURE) for i in failed))
    await publish(rabbit, tracking, reports)
    await publish(rabbit, tracking, reports)
    await publish(rabbit, tracking, report_task(*(report(i, "Complete", 100) for i in completed)))
    for message in tasks:
        await message.ack()

    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)

    # Then the ten reported and the ten silent are the job's failed items, each once
    assert (done.counts.completed, done.counts.failed) == (30, 20)
    page = await service.failures(job_id)
    assert page.total == 20
    by_id = {f.failure_id: f for f in page.failures}
    assert set(by_id) == set(failed) | set(silent)
    for task_id in failed:
        assert by_id[task_id].failure_source == "document-worker"
        assert by_id[task_id].failure_message == "INVALID_TASK: document 17 is not a PDF"
    for task_id in silent:
        assert by_id[task_id].failure_message == "no result for the item within 5 s"
    rows = [item for p in ledger.failed_pages(job_store.engine, ("default", job_id)) for item in p]
    assert all(row.message and json.loads(row.message)["to"] == target_queue for row in rows)
