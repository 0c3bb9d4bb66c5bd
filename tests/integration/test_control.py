"""Pause, resume and cancel reach the whole batch tree."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.errors import JobStateError
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings
from tests.conftest import unique
from tests.integration.handlers import RecordingHandler
from tests.integration.support import closed_runs, eventually, job, workflow_runs

SLOW = {"sleepMillis": "3"}


@pytest.fixture
def engine() -> EngineSettings:
    """At most 3 batches x 2 chunks x 50 items = 300 items in flight, of jobs of thousands."""
    return EngineSettings(
        chunk_size=50,
        batch_window=3,
        chunk_window=2,
        progress_interval_seconds=0.2,
        heartbeat_timeout_seconds=2.0,
    )


async def test_pause_holds_counts_still_and_resume_finishes(
    service: JobService, worker: Worker, recorder: RecordingHandler
) -> None:
    # Given a job slow enough to pause part-way: 3,000 items at 3 ms each
    job_id = unique("pause")
    await service.submit(job_id, job("range", "0-3000/1000", task_message_params=SLOW))

    async def started() -> bool:
        return (await service.get(job_id)).counts.completed > 300

    await eventually(started)

    # When it is paused
    paused = await service.pause(job_id)
    assert paused.status is JobStatus.PAUSED

    # Then within a few seconds the handler stops being called, nothing is in flight, and
    # the last counts of the items handled before the pause have come up the tree (on a
    # loaded machine a level's report may take more than a poll's second)
    sample: tuple[int, object] = (-1, None)  # the first poll only takes a sample

    async def settled() -> bool:
        nonlocal sample
        counts = (await service.get(job_id)).counts
        previous, sample = sample, (recorder.calls, counts)
        return previous == sample and counts.in_flight == 0

    await eventually(settled, within=10, interval=1.0)
    calls_then = recorder.calls
    held = await service.get(job_id)
    await asyncio.sleep(2)
    still = await service.get(job_id)
    assert still.status is JobStatus.PAUSED
    assert still.counts == held.counts, f"{held.counts} then {still.counts}"
    assert recorder.calls == calls_then
    assert held.counts.completed < 3000
    assert still.eta_seconds is None  # nothing says when it will be resumed

    # When it is resumed, it finishes with every item counted once
    assert (await service.resume(job_id)).status is JobStatus.ACTIVE
    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.completed, done.counts.failed, done.counts.total) == (3000, 0, 3000)
    assert set(recorder.seen) == set(range(3000))


async def test_cancel_ends_the_whole_tree(
    service: JobService, worker: Worker, recorder: RecordingHandler, client: Client
) -> None:
    job_id = unique("cancel")
    await service.submit(job_id, job("range", "0-5000/200", task_message_params=SLOW))

    async def started() -> bool:
        return (await service.get(job_id)).counts.completed > 200

    await eventually(started)
    cancelled = await service.cancel(job_id)
    # the view the call hands back reads Cancelled, not the status the job had before
    assert cancelled.status is JobStatus.CANCELLED

    async def tree_closed() -> bool:
        runs = await workflow_runs(client, "default", job_id)
        return all(status != "RUNNING" for _, status in runs)

    await eventually(tree_closed, within=30)
    view = await service.get(job_id)
    assert view.status is JobStatus.CANCELLED
    runs = await closed_runs(client, "default", job_id)
    assert len(runs) > 1
    assert {status for _, status in runs} <= {"CANCELED", "COMPLETED"}, runs
    assert ("job/default/" + job_id, "CANCELED") in runs
    calls = recorder.calls
    await asyncio.sleep(1)
    assert recorder.calls == calls < 5000
    # cancelling again changes nothing; pausing a cancelled job is refused
    assert (await service.cancel(job_id)).status is JobStatus.CANCELLED
    with pytest.raises(JobStateError, match="Cancelled"):
        await service.pause(job_id)


async def test_watch_yields_progress_as_it_moves_until_the_end(
    service: JobService, worker: Worker
) -> None:
    job_id = unique("watch")
    await service.submit(
        job_id, job("range", "0-2000/500", task_message_params={"sleepMillis": "1"})
    )

    updates = [view async for view in service.watch(job_id, interval=0.1)]

    done = [u.counts.done for u in updates]
    assert len(updates) >= 3
    assert done == sorted(done)
    assert [u.status.is_terminal for u in updates] == [False] * (len(updates) - 1) + [True]
    assert updates[-1].status is JobStatus.COMPLETED
    assert updates[-1].counts.completed == 2000
    assert any(u.items_per_second for u in updates[1:])
