"""A RabbitMQ outage in the middle of a queue job: the worker process rides it out, local jobs
never notice, and once the broker is back the queue job completes with exact counts."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from aio_pika.abc import AbstractChannel

from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.rabbit import rabbitmqctl
from tests.integration.support import eventually, job

QUEUE_ITEMS = 20_000
OUTAGE_SECONDS = 15
LATE_OUTAGE_SECONDS = 8.0
"""Into the outage, past when every chunk of the local job started before it has returned (a
chunk returns within the chunk time budget, 5 s) and been counted: what the local job does
from here on, it does with chunks started while the broker was away."""
LOCAL_ITEMS = 3000
LOCAL_JOB = job(
    "range", f"0-{LOCAL_ITEMS}/500", "local:sleep", task_message_params={"sleepMillis": "100"}
)
"""300 s of handler calls, on a worker's 8 activity slots at most: well over 30 s, so the job
outlasts the outage it starts just before."""
STALL_SECONDS = 5.0
"""Well inside the outage: a queue job whose items all went out before the broker stopped
makes no attempt that could name RabbitMQ, and reads stalled instead."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    api = settings.api.model_copy(update={"stall_seconds": STALL_SECONDS})
    return settings.model_copy(update={"api": api})


async def test_the_worker_rides_out_a_broker_outage(
    service: JobService,
    settings: Settings,
    rabbit: AbstractChannel,
    target_queue: str,
    reference_worker: subprocess.Popen[str],
    broker_restarted: None,
) -> None:
    # Given a worker process running a queue job and a local job that outlasts the outage
    worker = processes.start(settings, "worker")
    queue_job, local_job = unique("outage-queue"), unique("outage-local")
    try:
        await service.submit(queue_job, job("range", f"0-{QUEUE_ITEMS}/1000", target_queue))

        async def under_way() -> bool:
            return (await service.get(queue_job)).counts.completed >= 1000

        await eventually(under_way, within=60)
        await service.submit(local_job, LOCAL_JOB)

        async def local_active() -> bool:
            return (await service.get(local_job)).status is JobStatus.ACTIVE

        await eventually(local_active, within=30)

        # When the broker stops for a while
        rabbitmqctl("stop_app")
        assert (await service.get(local_job)).status is JobStatus.ACTIVE
        await asyncio.sleep(LATE_OUTAGE_SECONDS)
        before = await service.get(local_job)
        await asyncio.sleep(OUTAGE_SECONDS - LATE_OUTAGE_SECONDS)

        # Then the worker is still there, and the local job went on in the late outage, with
        # chunks it started while the broker was away, and is still running
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        during = await service.get(local_job)
        assert during.status is JobStatus.ACTIVE, during
        assert during.counts.completed > before.counts.completed

        # and the queue job, still Active, says it is waiting for RabbitMQ or, with all its
        # items out, that no item has finished for a while (on a busy machine the row may
        # take a few seconds more to hear of the last reports from before the outage)
        async def says_why() -> bool:
            stalled = await service.get(queue_job)
            assert stalled.status is JobStatus.ACTIVE, stalled.failures
            return stalled.status_reason is not None and stalled.eta_seconds is None

        await eventually(says_why, within=OUTAGE_SECONDS)

        # and once the broker is back, both jobs complete, every item counted once
        rabbitmqctl("start_app")
        for job_id, total in ((queue_job, QUEUE_ITEMS), (local_job, LOCAL_ITEMS)):
            done = await asyncio.wait_for(service.wait(job_id, interval=0.5), 180)
            assert done.status is JobStatus.COMPLETED, done
            assert (done.counts.total, done.counts.completed, done.counts.failed) == (
                total,
                total,
                0,
            )
        assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            await asyncio.to_thread(worker.wait, 30)
        except subprocess.TimeoutExpired:
            worker.kill()
