"""A worker killed mid-job, and another started: the job finishes, no item lost or counted twice."""

from __future__ import annotations

import asyncio
import signal

from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.support import eventually, job


async def test_a_killed_worker_loses_nothing(service: JobService, settings: Settings) -> None:
    # Given a worker process running a job of 20,000 items at 1 ms each
    first = processes.start(settings, "worker")
    job_id = unique("restart")
    await service.submit(
        job_id,
        job("range", "0-20000/1000", "local:sleep", task_message_params={"sleepMillis": "1"}),
    )

    async def halfway() -> bool:
        return (await service.get(job_id)).counts.completed >= 800

    try:
        await eventually(halfway, within=60)
    finally:
        # When the worker dies without a chance to finish anything
        first.send_signal(signal.SIGKILL)
        first.wait()
    stalled = await service.get(job_id)
    assert stalled.counts.completed < 20000

    # Then a new worker takes over from the heartbeated cursors and Temporal's history
    second = processes.start(settings, "worker")
    try:
        done = await asyncio.wait_for(service.wait(job_id, interval=0.5), 120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (20000, 20000, 0)
    assert second.returncode == 0
