"""Hostile and garbled messages on the tracking pipe: each is dead-lettered with its reason,
none is lost, and the worker that reads them, a real ``jobservice worker`` process, lives on."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel

from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from jobservice.tracking.consumer import REASON_HEADER
from tests.conftest import unique
from tests.integration import processes
from tests.integration.rabbit import depth, publish, take
from tests.integration.support import eventually, job

ITEMS = 10


@pytest.fixture
async def worker_process(settings: Settings) -> AsyncIterator[subprocess.Popen[str]]:
    """``jobservice worker`` in a process of its own, so that a crash is seen as one."""
    worker = processes.start(settings, "worker")
    yield worker
    worker.terminate()
    try:
        await asyncio.to_thread(worker.wait, 30)
    except subprocess.TimeoutExpired:
        worker.kill()


def poison(task_id: str, partition: str, job_id: str) -> list[tuple[bytes | dict[str, Any], str]]:
    """Messages no worker should send, and the start of the reason each is dead-lettered with.

    ``task_id`` is the tracking part of a real task message of the job."""

    def result(job_task_id: Any, **extra: Any) -> dict[str, Any]:
        return {
            "taskStatus": "RESULT_SUCCESS",
            "taskData": {},
            "tracking": {"jobTaskId": job_task_id},
            **extra,
        }

    def reports(*tracking_reports: Any, **extra: Any) -> dict[str, Any]:
        return {
            "taskClassifier": "TrackingReportTask",
            "taskData": {"trackingReports": list(tracking_reports)},
            **extra,
        }

    job_part = f"{partition}:{job_id}"
    first = "no usable report: trackingReports[0]: "
    deep = b"[" * 100_000 + b"]" * 100_000
    return [
        (b"not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'"a string"', "not a JSON object"),
        (deep, "JSON nested too deeply"),
        ({"taskStatus": "RESULT_SUCCESS"}, "no tracking.jobTaskId"),
        (result(["a", "list"]), "no tracking.jobTaskId"),
        ({"taskStatus": "RESULT_SUCCESS", "tracking": "text"}, "no tracking.jobTaskId"),
        ({**result(task_id), "taskStatus": "DONE"}, "unknown taskStatus 'DONE'"),
        ({**result(task_id), "taskStatus": None}, "unknown taskStatus None"),
        (result("no-partition.1"), "task id 'no-partition.1' has no 'partition:' prefix"),
        (result(job_part), f"task id {job_part!r} names a job, not an item"),
        (result(f"{job_part}.x"), "task id"),
        (result(f"{job_part}.1" + "9" * 5000), "item number"),
        (result(f"{job_part}.0"), "no item 0 in batch"),
        (result(f"{job_part}.{ITEMS + 1}"), f"no item {ITEMS + 1} in batch"),
        (result(f"{job_part}.{10**12}"), f"no item {10**12} in batch"),
        (result(f"{job_part}.99.99.99"), f"job {job_part} has no batch"),
        (result("default:no-such-job.1"), "unknown job 'job/default/no-such-job'"),
        (result(f"no-such-partition:{job_id}.1"), "unknown job"),
        ({"jobTaskId": task_id, "estimatedPercentageCompleted": 200}, "estimatedPercentage"),
        ({"estimatedPercentageCompleted": 50}, "a progress report without a jobTaskId"),
        (result(f"{job_part}.1\x00"), "task id"),
        (result(f"{job_part}.\ud800"), "tracking.jobTaskId"),
        ({**result(task_id), "taskStatus": "X" * 200_000}, "unknown taskStatus 'XXX"),
        ({**result(task_id), "to": "q" * 300}, "'to' 'qqq"),
        ({**reports(), "taskData": "!!"}, "the taskData of a TrackingReportTask is neither"),
        ({**reports(), "taskData": {}}, "a TrackingReportTask without a trackingReports list"),
        (reports(taskApiVersion=2), "TrackingReportTask version 2 is newer than 1"),
        (reports("text"), f"{first}not a JSON object"),
        (reports({"jobTaskId": task_id, "status": "Done"}), f"{first}status 'Done'"),
        (
            reports(
                {"jobTaskId": task_id, "status": "Progress", "estimatedPercentageCompleted": -5}
            ),
            f"{first}estimatedPercentageCompleted -5 is not 0 to 100",
        ),
        (
            reports({"jobTaskId": task_id, "status": "Retry", "retries": "many"}),
            f"{first}retries 'many' is not a count",
        ),
        (
            reports({"jobTaskId": task_id, "status": "Failed"}),
            f"{first}a Failed report without its failure",
        ),
        (
            reports({"jobTaskId": task_id, "status": "Failed", "failure": {"failureMessage": "m"}}),
            f"{first}a failure without a text failureId, failureSource, failureTime",
        ),
        (reports({"jobTaskId": f"{job_part}.x", "status": "Complete"}), f"{first}task id"),
        (
            reports({"jobTaskId": "default:no-such-job.1", "status": "Complete"}),
            "trackingReports[0]: unknown job 'job/default/no-such-job'",
        ),
        (
            reports({"jobTaskId": f"{job_part}.{ITEMS + 1}", "status": "Progress"}),
            f"trackingReports[0]: no item {ITEMS + 1} in batch",
        ),
    ]


async def test_no_tracking_message_stops_the_worker_or_is_lost(
    service: JobService,
    settings: Settings,
    rabbit: AbstractChannel,
    target_queue: str,
    partition: str,
    worker_process: subprocess.Popen[str],
) -> None:
    # Given a queue job whose task messages a worker has taken
    job_id = unique("hostile")
    await service.submit(job_id, job("range", f"0-{ITEMS}", target_queue), partition=partition)
    tasks = await take(rabbit, target_queue, ITEMS, within=60)
    bodies = sorted((json.loads(m.body) for m in tasks), key=lambda b: b["tracking"]["jobTaskId"])

    async def in_flight() -> bool:
        return (await service.get(job_id, partition=partition)).counts.in_flight == ITEMS

    await eventually(in_flight, within=30)

    # When the tracking pipe gets every kind of garbled or hostile message first
    cases = poison(bodies[0]["tracking"]["jobTaskId"], partition, job_id)
    for body, _ in cases:
        await publish(rabbit, settings.rabbitmq.tracking_pipe, body)
    # and a real result whose onward queue does not exist
    unroutable = {**bodies[0], "taskStatus": "RESULT_SUCCESS", "to": unique("no-such-queue")}
    await publish(rabbit, settings.rabbitmq.tracking_pipe, unroutable)
    # and a TrackingReportTask of which only the first report can be used
    mixed = [
        {"jobTaskId": bodies[0]["tracking"]["jobTaskId"], "status": "Progress"},
        {"jobTaskId": bodies[0]["tracking"]["jobTaskId"], "status": "Done"},
        {"jobTaskId": f"{partition}:{job_id}.{ITEMS + 5}", "status": "Complete"},
    ]
    await publish(
        rabbit,
        settings.rabbitmq.tracking_pipe,
        {"taskClassifier": "TrackingReportTask", "taskData": {"trackingReports": mixed}},
    )
    # and a failure whose text and worker name UTF-8 cannot hold
    exception = {
        **bodies[1],
        "taskStatus": "RESULT_EXCEPTION",
        "taskData": "disk \ud800 full",
        "sourceInfo": {"name": "\udfff" * 10_000},
    }
    await publish(rabbit, settings.rabbitmq.tracking_pipe, exception)
    # and then the other results
    for body in bodies[2:]:
        await publish(
            rabbit, settings.rabbitmq.tracking_pipe, {**body, "taskStatus": "RESULT_SUCCESS"}
        )
    for message in tasks:
        await message.ack()

    # Then the job ends with every item counted once, the worker still running
    done = await asyncio.wait_for(service.wait(job_id, partition=partition, interval=0.2), 60)
    assert done.status is JobStatus.FAILED, (done.counts, done.failures)
    assert (done.counts.completed, done.counts.failed) == (ITEMS - 1, 1)
    failure = next(f for f in done.failures if f.failure_id == bodies[1]["tracking"]["jobTaskId"])
    assert failure.failure_message == "RESULT_EXCEPTION: disk \\ud800 full"
    assert failure.failure_source.startswith("worker \\udfff")
    assert worker_process.poll() is None, (
        worker_process.stderr.read() if worker_process.stderr else ""
    )
    # and every message it could not act on waits in the dead-letter queue with its reason
    dead = await take(rabbit, settings.rabbitmq.dead_letter_pipe, len(cases) + 2, within=30)
    reasons = [str(m.headers[REASON_HEADER]) for m in dead]
    for _, expected in cases:
        assert any(r.startswith(expected) for r in reasons), (expected, "\n".join(reasons))
    assert any(r.startswith(f"could not forward to {unroutable['to']!r}") for r in reasons), reasons
    forwarded = next(m for m in dead if "could not forward" in str(m.headers[REASON_HEADER]))
    assert json.loads(forwarded.body)["tracking"]["jobTaskId"] == bodies[0]["tracking"]["jobTaskId"]
    # of the TrackingReportTask, a copy with only the reports that could not be used, its
    # reason naming each by its place in the copy
    done_is_no_status = "trackingReports[0]: status 'Done'"
    copy = next(m for m in dead if str(m.headers[REASON_HEADER]).startswith(done_is_no_status))
    assert str(copy.headers[REASON_HEADER]) == (
        f"{done_is_no_status} of "
        f"{bodies[0]['tracking']['jobTaskId']!r} is not Complete, Failed, Progress, Retry; "
        f"trackingReports[1]: no item {ITEMS + 5} in batch {partition + ':' + job_id!r}: its "
        f"items sent to a queue are numbered 1 to {ITEMS}"
    )
    assert json.loads(copy.body)["taskData"]["trackingReports"] == mixed[1:]
    assert await depth(rabbit, settings.rabbitmq.dead_letter_pipe) == 0
