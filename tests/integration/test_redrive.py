"""Redrive: a finished job runs again in place, sending exactly its failed items once more,
from the task messages recorded when they failed; its counts move from failed to completed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from aio_pika.abc import AbstractChannel
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.client import AsyncJobServiceClient, BadRequestError
from jobservice.db import failures as ledger
from jobservice.db.store import JobStore
from jobservice.errors import JobStateError
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.handlers import FailMarkedHandler
from tests.integration.rabbit import depth, publish, take
from tests.integration.support import API, eventually, job, run_to_end, workflow_runs
from tests.integration.test_tracking_reports import FAILURE, report, report_task


async def redriven(service: JobService, job_id: str) -> JobView:
    """Redrive the job and wait (two minutes at most) for the round to end."""
    started = await service.redrive(job_id)
    assert started.status in (JobStatus.ACTIVE, JobStatus.COMPLETED, JobStatus.FAILED)
    return await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)


async def test_a_redrive_sends_exactly_the_failed_items_again_and_moves_the_counts(
    service: JobService, worker: Worker, client: Client, marked_handler: FailMarkedHandler
) -> None:
    # Given 300 numbers in three batches of which the 150 odd ones fail, all tolerated
    marked_handler.marked = set(range(1, 300, 2))
    job_id = unique("redrive")
    first = await run_to_end(
        service, job_id, job("range", "0-300/100", "local:fail-marked", failure_tolerance="100%")
    )
    assert (first.status, first.counts.completed, first.counts.failed) == (
        JobStatus.COMPLETED,
        150,
        150,
    )
    failed_ids = {f.failure_id async for f in service.all_failures(job_id)}
    assert len(failed_ids) == 150

    # When the cause is fixed for all but the odd multiples of 25, and the job is redriven
    still_failing = {value for value in range(25, 300, 50)}
    marked_handler.marked = still_failing
    marked_handler.seen.clear()
    marked_handler.task_ids.clear()
    done = await redriven(service, job_id)

    # Then exactly the failed items were sent again, once each, with their own task ids
    assert sorted(marked_handler.seen) == list(range(1, 300, 2))
    assert set(marked_handler.task_ids) == failed_ids
    # and the counts moved: the total stands, the fixed items completed
    assert done.status is JobStatus.COMPLETED
    assert done.counts.total == 300
    assert (done.counts.completed, done.counts.failed) == (300 - 6, 6)
    assert done.redrive_count == 1 and done.last_redrive_time is not None
    # and the failures are what failed again; the first run's are kept as round 0
    again = await service.failures(job_id, limit=1000)
    assert again.total == 6
    assert {f.failure_message for f in again.failures} == {
        f"ValueError: item {value} is marked to fail" for value in still_failing
    }
    assert (await service.failures(job_id, round_=0)).total == 150
    # and Temporal ran the job's workflow again: a new run, the old one kept
    runs = [status for wid, status in await workflow_runs(client, "default", job_id)]
    assert runs.count("COMPLETED") >= 2

    # When it is redriven again with the cause gone: none fails, and nothing is left
    marked_handler.marked = set()
    marked_handler.seen.clear()
    final = await redriven(service, job_id)
    assert sorted(marked_handler.seen) == sorted(still_failing)
    assert (final.counts.completed, final.counts.failed, final.redrive_count) == (300, 0, 2)
    assert (await service.failures(job_id)).total == 0
    with pytest.raises(JobStateError, match="has no failed items to retry"):
        await service.redrive(job_id)


async def test_a_redrive_reads_what_was_recorded_not_the_source_now(
    service: JobService, worker: Worker, file_root: Path
) -> None:
    # Given a folder of 40 files, 8 with a wrong checksum sidecar
    tree = file_root / unique("tree")
    tree.mkdir()
    for number in range(40):
        content = f"file {number}\n".encode()
        (tree / f"f{number:02d}.txt").write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        wrong = number % 5 == 0
        (tree / f"f{number:02d}.txt.sha256").write_text(("0" * 64 if wrong else digest) + "\n")
    job_id = unique("sums")
    first = await run_to_end(
        service,
        job_id,
        job("directory", tree.name, "local:checksum", failure_tolerance="100%"),
    )
    assert (first.counts.total, first.counts.failed) == (80, 8)

    # When the sidecars are fixed, and every file that did not fail is deleted
    bad = {f"f{number:02d}.txt" for number in range(0, 40, 5)}
    for path in list(tree.iterdir()):
        name = path.name.removesuffix(".sha256")
        if name not in bad:
            path.unlink()
        elif path.name.endswith(".sha256"):
            digest = hashlib.sha256((tree / name).read_bytes()).hexdigest()
            path.write_text(digest + "\n")
    done = await redriven(service, job_id)

    # Then the eight are checked again, and pass: none of the deleted ones was read
    assert (done.status, done.counts.completed, done.counts.failed) == (JobStatus.COMPLETED, 80, 0)
    assert (done.counts.total, done.redrive_count) == (80, 1)


async def test_refusals_name_the_reason_and_change_nothing(
    service: JobService, worker: Worker, http: httpx.AsyncClient, marked_handler: FailMarkedHandler
) -> None:
    # A job that is still running (paused here) is refused, naming its status
    running = unique("running")
    await service.submit(running, job("range", "0-50000", "local:sleep"))
    await service.pause(running)
    answer = await http.post(f"{API}/partitions/default/jobs/{running}/redrive")
    assert answer.status_code == 400
    assert (
        "is Paused; only a Completed, Failed or Cancelled job can be redriven"
        in (answer.json()["message"])
    )
    await service.cancel(running)

    # A job with nothing to retry is refused, saying so
    clean = unique("clean")
    await run_to_end(service, clean, job("range", "0-10", "local:noop"))
    answer = await http.post(f"{API}/partitions/default/jobs/{clean}/redrive")
    assert answer.status_code == 400
    assert answer.json()["message"] == f"job {clean!r} has no failed items to retry"
    missing = await http.post(f"{API}/partitions/default/jobs/{unique('none')}/redrive")
    assert missing.status_code == 404

    # Two redrives at once: one runs, the other is refused
    marked_handler.marked = set(range(0, 100, 3))
    twice = unique("twice")
    await run_to_end(
        service, twice, job("range", "0-100", "local:fail-marked", failure_tolerance="100%")
    )
    marked_handler.marked = set()
    answers = await asyncio.gather(
        http.post(f"{API}/partitions/default/jobs/{twice}/redrive"),
        http.post(f"{API}/partitions/default/jobs/{twice}/redrive"),
    )
    assert sorted(a.status_code for a in answers) == [204, 400]
    refused = next(a for a in answers if a.status_code == 400)
    assert "redrive" in refused.json()["message"]
    done = await asyncio.wait_for(service.wait(twice, interval=0.2), 120)
    assert (done.counts.completed, done.counts.failed, done.redrive_count) == (100, 0, 1)


async def test_a_job_beyond_its_tolerance_ends_failed_again_or_completed(
    service: JobService, worker: Worker, marked_handler: FailMarkedHandler
) -> None:
    # Given a job that failed: 20 of 100 failed, 10 tolerated
    marked_handler.marked = set(range(0, 100, 5))
    job_id = unique("tolerance")
    first = await run_to_end(
        service, job_id, job("range", "0-100", "local:fail-marked", failure_tolerance="10")
    )
    assert first.status is JobStatus.FAILED

    # When 15 still fail on a redrive, it is Failed again; with 5, it Completes
    marked_handler.marked = set(range(0, 75, 5))
    again = await redriven(service, job_id)
    assert again.status is JobStatus.FAILED
    assert again.failures[0].failure_source == "job"
    marked_handler.marked = set(range(0, 25, 5))
    done = await redriven(service, job_id)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.completed, done.counts.failed, done.redrive_count) == (95, 5, 2)


@pytest.mark.worker_args("--fail-every", "7")
async def test_a_queue_job_redriven_sends_exactly_its_failed_task_ids_once(
    service: JobService,
    settings: Settings,
    job_store: JobStore,
    tracking_worker: None,
    reference_worker: subprocess.Popen[str],
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given 400 numbers in two batches sent to a worker that fails the multiples of 7
    job_id = unique("queued")
    first = await run_to_end(
        service, job_id, job("range", "0-400/200", target_queue, failure_tolerance="100%")
    )
    multiples = [value for value in range(400) if value % 7 == 0]
    assert (first.counts.completed, first.counts.failed) == (400 - len(multiples), len(multiples))
    failed_ids = {f.failure_id async for f in service.all_failures(job_id)}
    assert len(failed_ids) == len(multiples)
    reference_worker.terminate()
    await asyncio.to_thread(reference_worker.wait, 30)

    # When it is redriven, and the queue's messages are taken by hand
    await service.redrive(job_id)
    tasks = await take(rabbit, target_queue, len(multiples))

    # Then exactly the failed task ids came, once each, as they were first sent
    bodies = [json.loads(message.body) for message in tasks]
    assert sorted(b["tracking"]["jobTaskId"] for b in bodies) == sorted(failed_ids)
    await asyncio.sleep(1)
    assert await depth(rabbit, target_queue) == 0
    rows = {
        row.task_id: json.loads(row.message or "{}")
        for page in ledger.failed_pages(job_store.engine, ("default", job_id), round_=0)
        for row in page
    }
    for body in bodies:
        assert body["taskData"] == rows[body["tracking"]["jobTaskId"]]["taskData"]
        assert body["taskId"] == rows[body["tracking"]["jobTaskId"]]["taskId"]

    # When a worker reports two of them failed again in a TrackingReportTask, the first twice,
    # and the others succeed by their results
    tracking = settings.rabbitmq.tracking_pipe
    again = sorted(failed_ids)[:2]
    failing = report_task(*(report(i, "Failed", failure=FAILURE) for i in again))
    await publish(rabbit, tracking, failing)
    await publish(rabbit, tracking, failing)
    for body in bodies:
        if body["tracking"]["jobTaskId"] not in again:
            await publish(rabbit, tracking, {**body, "taskStatus": "RESULT_SUCCESS"})
    for message in tasks:
        await message.ack()
    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)

    # Then the counts moved exactly, and the failures are the two
    assert (done.status, done.counts.total) == (JobStatus.COMPLETED, 400)
    assert (done.counts.completed, done.counts.failed) == (400 - 2, 2)
    now_failed = await service.failures(job_id)
    assert sorted(f.failure_id for f in now_failed.failures) == again
    assert {f.failure_source for f in now_failed.failures} == {"document-worker"}


async def test_a_redrive_pauses_resumes_and_cancels_like_any_job(
    service: JobService, worker: Worker, marked_handler: FailMarkedHandler
) -> None:
    # Given a job whose 2,000 failed items take a while to send again (3 ms each)
    marked_handler.marked = set(range(0, 4000, 2))
    job_id = unique("steer")
    params = {"sleepMillis": "3"}
    slow = job(
        "range",
        "0-4000/1000",
        "local:fail-marked",
        failure_tolerance="100%",
        task_message_params=params,
    )
    await run_to_end(service, job_id, slow)
    marked_handler.marked = set()
    marked_handler.seen.clear()
    await service.redrive(job_id)

    async def moved(beyond: int) -> bool:
        return (await service.get(job_id)).counts.completed > beyond

    # When it is paused midway, its counts stand still and nothing more is handled
    await eventually(lambda: moved(2_300), within=60)
    paused = await service.pause(job_id)
    assert paused.status is JobStatus.PAUSED
    await asyncio.sleep(2)
    seen, still = len(marked_handler.seen), (await service.get(job_id)).counts
    await asyncio.sleep(2)
    assert len(marked_handler.seen) == seen
    assert (await service.get(job_id)).counts == still
    assert still.completed + still.failed + still.in_flight < 4000

    # When it is resumed, it ends with every item completed, each handled once
    await service.resume(job_id)
    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)
    assert (done.status, done.counts.completed, done.counts.failed) == (
        JobStatus.COMPLETED,
        4000,
        0,
    )
    assert sorted(marked_handler.seen) == list(range(0, 4000, 2))

    # And a redrive cancelled midway leaves what it did not reach failed, to redrive again
    marked_handler.marked = set(range(1, 4000, 2))
    other = unique("cancelled")
    await run_to_end(service, other, slow.model_copy(update={"target_pipe": "local:fail-marked"}))
    marked_handler.marked = set()
    await service.redrive(other)
    await eventually(lambda: _completed_beyond(service, other, 2_200), within=60)
    cancelled = await service.cancel(other)
    assert cancelled.status is JobStatus.CANCELLED
    counts = (await service.get(other)).counts
    assert counts.completed + counts.failed == 4000 and counts.failed > 0
    assert (await service.failures(other)).total == counts.failed
    final = await redriven(service, other)
    assert (final.status, final.counts.completed, final.counts.failed) == (
        JobStatus.COMPLETED,
        4000,
        0,
    )
    assert final.redrive_count == 2


async def _completed_beyond(service: JobService, job_id: str, beyond: int) -> bool:
    return (await service.get(job_id)).counts.completed > beyond


async def test_a_redrive_survives_its_worker_killed_midway_with_exact_counts(
    service: JobService,
    settings: Settings,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a worker process and a queue job whose every third item failed
    first = processes.start(settings, "worker")
    failing = processes.start_reference_worker(target_queue, "--fail-every", "3")
    job_id = unique("killed")
    try:
        await run_to_end(
            service, job_id, job("range", "0-3000/1000", target_queue, failure_tolerance="100%")
        )
        assert (await service.get(job_id)).counts.failed == 1000
    finally:
        failing.terminate()
        failing.wait(30)
    healthy = processes.start_reference_worker(target_queue, "--item-millis", "8")
    second = None
    try:
        # When it is redriven, and the worker is killed while the redrive is under way
        await service.redrive(job_id)
        await eventually(lambda: _completed_beyond(service, job_id, 2_200), within=60)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert (await service.get(job_id)).counts.completed < 3000
        second = processes.start(settings, "worker")

        # Then another worker finishes it, every item counted once
        done = await asyncio.wait_for(service.wait(job_id, interval=0.5), 180)
    finally:
        processes.stop(healthy, first, second)
    assert (done.status, done.counts.completed, done.counts.failed) == (
        JobStatus.COMPLETED,
        3000,
        0,
    )
    assert (await service.failures(job_id)).total == 0


async def test_the_client_redrives_a_job_and_reads_each_rounds_failures(
    service: JobService, worker: Worker, http: httpx.AsyncClient, marked_handler: FailMarkedHandler
) -> None:
    marked_handler.marked = set(range(0, 60, 3))
    job_id = unique("client")
    await run_to_end(
        service, job_id, job("range", "0-60", "local:fail-marked", failure_tolerance="100%")
    )
    marked_handler.marked = {0, 30}
    client = AsyncJobServiceClient(str(http.base_url), http=http)

    await client.redrive_job(job_id)
    await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)

    job_now = await client.get_job(job_id)
    assert (job_now.counts.completed, job_now.counts.failed, job_now.redrive_count) == (58, 2, 1)
    assert job_now.last_redrive_time and job_now.last_redrive_time > job_now.create_time
    assert (await client.job_failures(job_id)).total == 2
    assert len([f async for f in client.iter_job_failures(job_id, round=0)]) == 20
    bad_round = await http.get(f"{API}/partitions/default/jobs/{job_id}/failures?round=5")
    assert bad_round.status_code == 400
    assert "has rounds 0 (its first run) to 1" in bad_round.json()["message"]
    marked_handler.marked = set()
    await client.redrive_job(job_id)
    await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)
    with pytest.raises(BadRequestError, match="has no failed items to retry"):
        await client.redrive_job(job_id)


async def test_a_queue_redrive_cancelled_midway_keeps_counts_and_ledger_agreeing(
    service: JobService,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a queue job of 300 items, of which a worker reports 120 failed
    job_id = unique("qcancel")
    await service.submit(job_id, job("range", "0-300", target_queue, failure_tolerance="100%"))
    tasks = await take(rabbit, target_queue, 300)
    bodies = [json.loads(message.body) for message in tasks]
    tracking = settings.rabbitmq.tracking_pipe
    for number, body in enumerate(bodies):
        status = "RESULT_EXCEPTION" if number % 5 < 2 else "RESULT_SUCCESS"
        await publish(rabbit, tracking, {**body, "taskStatus": status})
    for message in tasks:
        await message.ack()
    first = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)
    assert first.counts.failed == 120

    # When it is redriven, and its items succeed one by one while it is cancelled
    await service.redrive(job_id)
    again = await take(rabbit, target_queue, 120)
    for message in again:
        await message.ack()

    async def succeed() -> None:
        for message in again:
            body = {**json.loads(message.body), "taskStatus": "RESULT_SUCCESS"}
            await publish(rabbit, tracking, body)
            await asyncio.sleep(0.03)

    results = asyncio.create_task(succeed())
    await eventually(lambda: _completed_beyond(service, job_id, 180 + 10), within=30)
    cancelled = await service.cancel(job_id)
    await results
    assert cancelled.status is JobStatus.CANCELLED

    # Then the counts and the ledger agree: what did not complete is failed, and listed
    done = await service.get(job_id)
    left = done.counts.failed
    assert 0 < left < 100
    assert (done.counts.completed + left, done.counts.in_flight) == (300, 0)
    assert (await service.failures(job_id)).total == left
    # and the next redrive sends exactly those
    await service.redrive(job_id)
    last = await take(rabbit, target_queue, left)
    assert len({json.loads(m.body)["tracking"]["jobTaskId"] for m in last}) == left
    await asyncio.sleep(1)
    assert await depth(rabbit, target_queue) == 0
    for message in last:
        await publish(
            rabbit, tracking, {**json.loads(message.body), "taskStatus": "RESULT_SUCCESS"}
        )
        await message.ack()
    final = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)
    assert (final.status, final.counts.completed, final.counts.failed) == (
        JobStatus.COMPLETED,
        300,
        0,
    )


async def test_a_job_whose_failures_were_never_kept_is_refused_saying_so(
    service: JobService, worker: Worker, job_store: JobStore, marked_handler: FailMarkedHandler
) -> None:
    # Given a job with failed items, as one that ran before the ledger kept them
    marked_handler.marked = {1, 2, 3}
    job_id = unique("before")
    await run_to_end(
        service, job_id, job("range", "0-10", "local:fail-marked", failure_tolerance="100%")
    )
    with job_store.engine.begin() as connection:
        ledger.job_deleted(connection, ("default", job_id))

    with pytest.raises(JobStateError, match="counts 3 failed items but none is in the"):
        await service.redrive(job_id)
    assert (await service.get(job_id)).status is JobStatus.COMPLETED
