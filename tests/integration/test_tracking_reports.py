"""A worker built on the reference worker framework reports through TrackingReportTask messages
and progress reports: its items complete, fail, retry and move the job's percentage while they
are in flight, each counted once."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from aio_pika.abc import AbstractChannel
from temporalio.client import Client

from jobservice.execution.job import JobProgress
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration.rabbit import publish, take
from tests.integration.support import eventually, job

ITEMS = 200
FAILURE = {
    "failureId": "INVALID_TASK",
    "failureTime": 1_733_000_000_000,
    "failureSource": "document-worker",
    "failureMessage": "document 17 is not a PDF",
}


def report_task(*reports: dict[str, Any]) -> dict[str, object]:
    """A TrackingReportTask as the reference framework publishes it: taskData in base64."""
    data = json.dumps({"trackingReports": list(reports)}).encode()
    return {
        "version": 3,
        "taskId": unique("report"),
        "taskClassifier": "TrackingReportTask",
        "taskApiVersion": 1,
        "taskData": base64.b64encode(data).decode(),
        "taskStatus": "NEW_TASK",
        "context": {},
        "to": "tracking",
    }


def report(task_id: str, status: str, percent: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "jobTaskId": task_id,
        "status": status,
        "estimatedPercentageCompleted": percent,
        **extra,
    }


async def test_reference_reports_move_items_in_flight_and_settle_each_once(
    service: JobService,
    client: Client,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a job of 200 items in two batches, whose task messages a worker has taken
    job_id = unique("reports")
    await service.submit(
        job_id, job("range", f"0-{ITEMS}/100", target_queue, failure_tolerance="1")
    )
    tasks = await take(rabbit, target_queue, ITEMS)
    bodies = [json.loads(m.body) for m in tasks]
    ids = sorted(b["tracking"]["jobTaskId"] for b in bodies)
    assert len({i.rpartition(".")[0] for i in ids}) == 2  # two batches
    tracking_pipe = settings.rabbitmq.tracking_pipe

    async def view() -> JobView:
        return await service.get(job_id)

    async def reads(percent: float, completed: int, failed: int = 0) -> bool:
        job_view = await view()
        counts = job_view.counts
        return (job_view.percentage_complete, counts.completed, counts.failed) == (
            percent,
            completed,
            failed,
        )

    async def all_in_flight() -> bool:
        return (await view()).counts.in_flight == ITEMS

    await eventually(all_in_flight, within=30)

    # When it says every item is half done: half of them in one TrackingReportTask that speaks
    # of both batches, the other half as progress reports of their own
    half, rest = ids[::2], ids[1::2]
    await publish(rabbit, tracking_pipe, report_task(*(report(i, "Progress", 50) for i in half)))
    for task_id in rest:
        await publish(
            rabbit, tracking_pipe, {"jobTaskId": task_id, "estimatedPercentageCompleted": 50}
        )

    # Then the job reads half done, with no item completed and all in flight
    await eventually(lambda: reads(50.0, 0), within=30)
    assert (await view()).counts.in_flight == ITEMS

    # When one item is retried, and the worker says so twice, and another fails
    retried, failed = ids[0], ids[17]
    for _ in range(2):
        await publish(rabbit, tracking_pipe, report_task(report(retried, "Retry", retries=1)))
    await publish(rabbit, tracking_pipe, report_task(report(failed, "Failed", failure=FAILURE)))

    # Then the retried item is still in flight, back at 0 %, and counted as one retry
    await eventually(lambda: reads(50.0, 0, 1), within=30)
    assert (await view()).counts.in_flight == ITEMS - 1
    handle = client.get_workflow_handle(f"job/default/{job_id}")

    async def one_retry() -> bool:
        progress: JobProgress = await handle.query("progress", result_type=JobProgress)
        return progress.progress.retries == 1

    await eventually(one_retry, within=10)
    # and the failure is the item's, as the worker reported it
    failure = next(f for f in (await view()).failures if f.failure_id == failed)
    assert failure.failure_source == "document-worker"
    assert failure.failure_message == "INVALID_TASK: document 17 is not a PDF"
    assert failure.failure_time.isoformat() == "2024-11-30T20:53:20+00:00"

    # When every other item completes: some by their results first, then all by Complete
    # reports (twice), and late progress comes for items already done
    others = [i for i in ids if i not in (retried, failed)]
    by_id = {b["tracking"]["jobTaskId"]: b for b in bodies}
    for task_id in others[:50]:
        await publish(rabbit, tracking_pipe, {**by_id[task_id], "taskStatus": "RESULT_SUCCESS"})
    completes = report_task(*(report(i, "Complete", 100) for i in others))
    await publish(rabbit, tracking_pipe, completes)
    await publish(rabbit, tracking_pipe, completes)
    await publish(rabbit, tracking_pipe, report_task(*(report(i, "Progress", 90) for i in others)))
    await publish(rabbit, tracking_pipe, report_task(report(failed, "Complete")))

    # Then each counts once, and the job is not done while the retried item is out
    await eventually(lambda: reads(99.0, ITEMS - 2, 1), within=30)
    assert (await view()).status is JobStatus.ACTIVE
    assert (await view()).counts.in_flight == 1

    # When the retried item completes at last
    await publish(rabbit, tracking_pipe, report_task(report(retried, "Complete", 100)))
    for message in tasks:
        await message.ack()

    # Then the job has Completed, every item counted once
    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.completed, done.counts.failed, done.counts.in_flight) == (ITEMS - 1, 1, 0)
    assert done.percentage_complete == 100
