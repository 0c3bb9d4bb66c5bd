"""Redrive of a job that stopped before it reached every item (cancelled, or failed beyond
its tolerance): its tree carries on from where each batch stood, running exactly the items
the job had not done, then its failed items are sent again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
from collections import Counter

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from temporalio.worker import Worker

from jobservice.db import checkpoints
from jobservice.db.store import JobStore
from jobservice.execution.batch import BatchState
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.jobs.taskids import workflow_id
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.handlers import FailMarkedHandler
from tests.integration.rabbit import depth, publish, take
from tests.integration.support import eventually, job

ITEMS = 3000
SLOW = {"sleepMillis": "2"}


async def _done_beyond(service: JobService, job_id: str, beyond: int) -> bool:
    counts = (await service.get(job_id)).counts
    return counts.completed + counts.failed > beyond


async def _seen(handler: FailMarkedHandler, items: int) -> bool:
    return len(handler.seen) >= items


async def _redriven_fixed(service: JobService, handler: FailMarkedHandler, job_id: str) -> JobView:
    """Redrive the job with the cause of its failures gone; the job once the redrive ends.
    The handler remembers only what the redrive gave it."""
    handler.marked = set()
    handler.seen.clear()
    handler.task_ids.clear()
    await service.redrive(job_id)
    await _to_end(service, job_id)
    return await service.get(job_id)


def _all_done_once(done: JobView, handler: FailMarkedHandler, completed_before: int) -> None:
    """Every item is completed, and the redrive handled, once each, exactly those the job
    had not completed before it."""
    assert (done.status, done.counts.total) == (JobStatus.COMPLETED, ITEMS)
    assert (done.counts.completed, done.counts.failed) == (ITEMS, 0)
    assert len(handler.seen) == ITEMS - completed_before
    assert len(set(handler.task_ids)) == len(handler.task_ids)


async def _to_end(service: JobService, job_id: str) -> None:
    """Wait for the job's end, and for its workflow to close: a cancelled job's row reads
    Cancelled at once, and its last counts once its tree has stopped."""
    await asyncio.wait_for(service.wait(job_id, interval=0.2), 180)
    handle = service.client.get_workflow_handle(workflow_id("default", job_id))
    with contextlib.suppress(Exception):
        await asyncio.wait_for(handle.result(), 60)


async def test_a_cancelled_job_redriven_runs_exactly_what_it_had_not_done(
    service: JobService, worker: Worker, job_store: JobStore, marked_handler: FailMarkedHandler
) -> None:
    # Given a job of 3,000 numbers in a tree two levels deep whose multiples of 7 fail,
    # cancelled a third of the way through
    marked_handler.marked = set(range(0, ITEMS, 7))
    job_id = unique("carry")
    definition = job(
        "range",
        f"0-{ITEMS}/100",
        "local:fail-marked",
        failure_tolerance="100%",
        task_message_params=SLOW,
    )
    await service.submit(job_id, definition)
    await eventually(lambda: _done_beyond(service, job_id, 1000), within=90)
    await service.cancel(job_id)
    await _to_end(service, job_id)
    first = await service.get(job_id)
    assert first.status is JobStatus.CANCELLED
    assert first.counts.completed + first.counts.failed < ITEMS
    failed_before = {f.failure_id async for f in service.all_failures(job_id)}
    assert len(failed_before) == first.counts.failed > 0
    with job_store.engine.connect() as connection:
        assert checkpoints.has_root(connection, ("default", job_id))

    # When the cause is fixed and the job is redriven
    done = await _redriven_fixed(service, marked_handler, job_id)

    # Then every item the first run had not completed was handled once, and no other
    _all_done_once(done, marked_handler, first.counts.completed)
    assert failed_before <= set(marked_handler.task_ids)
    assert done.redrive_count == 1
    assert (await service.failures(job_id)).total == 0


async def test_a_redrive_cancelled_while_it_carries_on_carries_on_again(
    service: JobService, worker: Worker, marked_handler: FailMarkedHandler
) -> None:
    # Given a cancelled job whose redrive is cancelled too, before it has reached every item
    marked_handler.marked = set(range(0, ITEMS, 11))
    job_id = unique("again")
    definition = job(
        "range",
        f"0-{ITEMS}/100",
        "local:fail-marked",
        failure_tolerance="100%",
        task_message_params={"sleepMillis": "10"},
    )
    await service.submit(job_id, definition)
    await eventually(lambda: _done_beyond(service, job_id, 300), within=90)
    await service.cancel(job_id)
    await _to_end(service, job_id)
    marked_handler.seen.clear()
    await service.redrive(job_id)
    await eventually(lambda: _seen(marked_handler, 300), within=90)
    await service.cancel(job_id)
    await _to_end(service, job_id)
    second = await service.get(job_id)
    assert second.status is JobStatus.CANCELLED
    assert second.counts.completed + second.counts.failed < ITEMS
    # (what a run counts, and what its handler saw, agree)
    handled = Counter(marked_handler.seen)
    assert all(times == 1 for times in handled.values())

    # When it is redriven once more with the cause fixed, it ends with every item completed
    done = await _redriven_fixed(service, marked_handler, job_id)
    _all_done_once(done, marked_handler, second.counts.completed)
    assert done.redrive_count == 2


async def test_a_redrive_cancelled_at_once_leaves_the_job_as_it_stood(
    service: JobService, worker: Worker, marked_handler: FailMarkedHandler
) -> None:
    # Given a cancelled job
    job_id = unique("atonce")
    definition = job("range", f"0-{ITEMS}/100", "local:fail-marked", task_message_params=SLOW)
    await service.submit(job_id, definition)
    await eventually(lambda: _done_beyond(service, job_id, 500), within=90)
    await service.cancel(job_id)
    await _to_end(service, job_id)
    stood = (await service.get(job_id)).counts

    # When a redrive of it is cancelled as soon as it is begun
    await service.redrive(job_id)
    await service.cancel(job_id)
    await _to_end(service, job_id)

    # Then its counts are what they were, never less
    after = (await service.get(job_id)).counts
    assert after.completed >= stood.completed and after.total == ITEMS
    # and the next redrive completes it exactly
    done = await _redriven_fixed(service, marked_handler, job_id)
    _all_done_once(done, marked_handler, after.completed)


async def test_a_job_failed_beyond_its_tolerance_redriven_completes_what_it_left(
    service: JobService, worker: Worker, marked_handler: FailMarkedHandler
) -> None:
    # Given a job that failed early: more than 5 of its items failed
    marked_handler.marked = set(range(0, ITEMS, 97))
    job_id = unique("beyond")
    definition = job("range", f"0-{ITEMS}/100", "local:fail-marked", failure_tolerance="5")
    await service.submit(job_id, definition)
    await _to_end(service, job_id)
    first = await service.get(job_id)
    assert first.status is JobStatus.FAILED
    assert first.counts.completed + first.counts.failed < ITEMS

    # When it is redriven with the cause fixed
    done = await _redriven_fixed(service, marked_handler, job_id)

    # Then it completes, every item it had not completed handled once
    _all_done_once(done, marked_handler, first.counts.completed)


async def test_a_job_cancelled_while_it_waited_is_run_whole_by_a_redrive(
    service: JobService, worker: Worker, marked_handler: FailMarkedHandler
) -> None:
    job_id = unique("waited")
    await service.submit(job_id, job("range", "0-500", "local:fail-marked", delay=3600))
    await eventually(lambda: _status_is(service, job_id, JobStatus.WAITING), within=30)
    await service.cancel(job_id)
    await _to_end(service, job_id)
    marked_handler.seen.clear()

    await service.redrive(job_id)
    await _to_end(service, job_id)

    done = await service.get(job_id)
    assert (done.status, done.counts.completed, done.counts.total) == (
        JobStatus.COMPLETED,
        500,
        500,
    )
    assert sorted(marked_handler.seen) == list(range(500))


async def _status_is(service: JobService, job_id: str, status: JobStatus) -> bool:
    return (await service.get(job_id)).status is status


async def test_a_cancelled_queue_job_redriven_sends_exactly_the_items_without_a_result(
    service: JobService,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    # Given a queue job of 300 items, all out, of which 100 have a result when it is
    # cancelled: 60 completed, 40 failed
    job_id = unique("qcarry")
    await service.submit(job_id, job("range", "0-300", target_queue, failure_tolerance="100%"))
    tasks = await take(rabbit, target_queue, 300)
    for message in tasks:
        await message.ack()
    bodies = [json.loads(message.body) for message in tasks]
    tracking = settings.rabbitmq.tracking_pipe
    answered = bodies[::3]
    failed = {b["tracking"]["jobTaskId"] for b in answered[::5] + answered[1::5]}
    for body in answered:
        status = "RESULT_EXCEPTION" if body["tracking"]["jobTaskId"] in failed else "RESULT_SUCCESS"
        await publish(rabbit, tracking, {**body, "taskStatus": status})
    await eventually(lambda: _done_beyond(service, job_id, len(answered) - 1), within=30)
    await service.cancel(job_id)
    await _to_end(service, job_id)
    first = await service.get(job_id)
    assert (first.status, first.counts.completed, first.counts.failed) == (
        JobStatus.CANCELLED,
        60,
        40,
    )

    # When it is redriven
    await service.redrive(job_id)

    # Then first exactly the items without a result are sent again, with their own task ids
    unanswered = {b["tracking"]["jobTaskId"] for b in bodies} - {
        b["tracking"]["jobTaskId"] for b in answered
    }
    again = await take(rabbit, target_queue, len(unanswered))
    assert sorted(_task_ids(again)) == sorted(unanswered)
    await asyncio.sleep(1)
    assert await depth(rabbit, target_queue) == 0
    await _succeed(rabbit, tracking, again)

    # then, once they are done, exactly the failed ones
    retried = await take(rabbit, target_queue, len(failed))
    assert sorted(_task_ids(retried)) == sorted(failed)
    await asyncio.sleep(1)
    assert await depth(rabbit, target_queue) == 0
    await _succeed(rabbit, tracking, retried)

    # and the job is Completed with every item counted once
    await _to_end(service, job_id)
    done = await service.get(job_id)
    assert (done.status, done.counts.completed, done.counts.failed, done.counts.total) == (
        JobStatus.COMPLETED,
        300,
        0,
        300,
    )
    assert (await service.failures(job_id)).total == 0


def _task_ids(messages: list[AbstractIncomingMessage]) -> list[str]:
    return [json.loads(message.body)["tracking"]["jobTaskId"] for message in messages]


async def _succeed(
    rabbit: AbstractChannel, tracking: str, messages: list[AbstractIncomingMessage]
) -> None:
    for message in messages:
        body = json.loads(message.body)
        await publish(rabbit, tracking, {**body, "taskStatus": "RESULT_SUCCESS"})
        await message.ack()


@pytest.mark.worker_args("--fail-every", "7", "--item-millis", "2")
async def test_a_cancelled_queue_tree_redriven_through_workers_ends_exact(
    service: JobService,
    tracking_worker: None,
    reference_worker: subprocess.Popen[str],
    target_queue: str,
) -> None:
    # Given a queue job of 1,400 items in seven batches, through a worker that fails the
    # multiples of 7, cancelled midway (what is left on the queue stays there)
    job_id = unique("qtree")
    tree = job("range", "0-1400/200", target_queue, failure_tolerance="100%")
    await service.submit(job_id, tree)
    await eventually(lambda: _done_beyond(service, job_id, 400), within=60)
    await service.cancel(job_id)
    await _to_end(service, job_id)
    first = await service.get(job_id)
    assert first.counts.completed + first.counts.failed < 1400

    # When it is redriven through a worker that still fails them
    await service.redrive(job_id)
    await _to_end(service, job_id)

    # Then it ends with every item done once, the multiples of 7 failed, and listed as the
    # round's failures whether the tree or the round's batch sent them
    sevens = len(range(0, 1400, 7))
    again = await service.get(job_id)
    assert (again.status, again.counts.total) == (JobStatus.COMPLETED, 1400)
    assert (again.counts.completed, again.counts.failed) == (1400 - sevens, sevens)
    assert (await service.failures(job_id)).total == sevens

    # When the worker is fixed and the job redriven once more, it completes
    reference_worker.terminate()
    await asyncio.to_thread(reference_worker.wait, 30)
    healthy = processes.start_reference_worker(target_queue)
    try:
        await service.redrive(job_id)
        await _to_end(service, job_id)
    finally:
        healthy.terminate()
        await asyncio.to_thread(healthy.wait, 30)
    done = await service.get(job_id)
    assert (done.status, done.counts.completed, done.counts.failed) == (
        JobStatus.COMPLETED,
        1400,
        0,
    )
    assert done.redrive_count == 2


async def test_a_batch_still_closing_is_waited_for_when_the_redrive_starts_it(
    service: JobService, worker: Worker, job_store: JobStore, marked_handler: FailMarkedHandler
) -> None:
    # Given a cancelled job, one of whose stopped batches has a run still open under its id
    # (as when a redrive comes while the batch is closing)
    job_id = unique("closing")
    definition = job("range", f"0-{ITEMS}/100", "local:fail-marked", task_message_params=SLOW)
    await service.submit(job_id, definition)
    await eventually(lambda: _done_beyond(service, job_id, 500), within=90)
    await service.cancel(job_id)
    await _to_end(service, job_id)
    stood = (await service.get(job_id)).counts
    root = checkpoints.load(job_store.engine, ("default", job_id), ())
    assert root is not None
    index = BatchState.model_validate_json(root).stopped[0].index
    blocker = await service.client.start_workflow(
        "NoSuchWorkflow",
        id=workflow_id("default", job_id, [index]),
        task_queue=unique("nobody"),
    )

    # When the job is redriven, it waits for that run rather than failing
    marked_handler.seen.clear()
    marked_handler.task_ids.clear()
    await service.redrive(job_id)
    await asyncio.sleep(3)
    assert (await service.get(job_id)).status is JobStatus.ACTIVE
    await blocker.terminate("closed at last")

    # and once it has closed, carries on to the end exactly
    await _to_end(service, job_id)
    _all_done_once(await service.get(job_id), marked_handler, stood.completed)


async def test_a_carried_on_redrive_survives_its_worker_killed_midway(
    service: JobService, settings: Settings, target_queue: str
) -> None:
    # Given a worker process, and a queue job cancelled a third of the way through
    first = processes.start(settings, "worker")
    external = processes.start_reference_worker(target_queue, "--item-millis", "2")
    second = None
    job_id = unique("carrykill")
    try:
        await service.submit(job_id, job("range", "0-3000/500", target_queue))
        await eventually(lambda: _done_beyond(service, job_id, 1000), within=60)
        await service.cancel(job_id)
        await _to_end(service, job_id)
        stood = (await service.get(job_id)).counts.completed
        assert stood < 3000

        # When it is redriven, and its worker is killed while the tree carries on
        await service.redrive(job_id)
        await eventually(lambda: _done_beyond(service, job_id, stood + 500), within=60)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert (await service.get(job_id)).counts.completed < 3000
        second = processes.start(settings, "worker")

        # Then another worker finishes it, every item counted once
        done = await asyncio.wait_for(service.wait(job_id, interval=0.5), 180)
    finally:
        processes.stop(external, first, second)
    assert (done.status, done.counts.completed, done.counts.failed, done.counts.total) == (
        JobStatus.COMPLETED,
        3000,
        0,
        3000,
    )
