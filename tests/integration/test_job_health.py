"""A job nobody is working on does not look healthy: no worker polling, or no item finished
for a while with work left, shows in its statusReason, with no invented ETA."""

from __future__ import annotations

import asyncio
import json

from aio_pika.abc import AbstractChannel
from temporalio.client import Client

from jobservice.db.store import JobStore
from jobservice.jobs.status import JobStatus
from jobservice.plugins.registry import Registry
from jobservice.processes.worker import build_worker
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration.rabbit import publish, take
from tests.integration.support import eventually, job


async def test_a_job_without_a_worker_says_so_until_one_polls(
    client: Client, settings: Settings, registry: Registry, job_store: JobStore
) -> None:
    # Given a job submitted while no worker polls its task queue
    service = JobService(client, store=job_store, settings=settings, registry=registry)
    job_id = unique("no-worker")
    await service.submit(job_id, job("range", "0-20", "local:noop"))

    # Then its status says nobody is working on it, naming the task queue
    waiting = await service.get(job_id)
    assert waiting.status_reason is not None
    assert f"no worker is polling task queue {settings.temporal.task_queue!r}" in (
        waiting.status_reason
    )
    assert waiting.eta_seconds is None
    listed = await service.list(limit=500)
    assert any(v.id == job_id and v.status_reason == waiting.status_reason for v in listed)

    # When a worker starts, the job runs to the end and the reason is gone
    async with build_worker(client, settings=settings, registry=registry, store=job_store):
        done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
        assert done.status is JobStatus.COMPLETED
        assert done.status_reason is None


async def test_a_job_whose_results_stop_coming_says_so(
    client: Client,
    settings: Settings,
    registry: Registry,
    job_store: JobStore,
    tracking_worker: None,
    rabbit: AbstractChannel,
    target_queue: str,
) -> None:
    quick = settings.model_copy(
        update={"api": settings.api.model_copy(update={"stall_seconds": 2.0})}
    )
    service = JobService(client, store=job_store, settings=quick, registry=registry)
    # Given a queue job whose external worker answered half its items and then went quiet
    job_id = unique("stalled")
    await service.submit(job_id, job("range", "0-10", target_queue))
    tasks = await take(rabbit, target_queue, 10)
    for message in tasks[:5]:
        body = json.loads(message.body)
        await publish(
            rabbit, settings.rabbitmq.tracking_pipe, {**body, "taskStatus": "RESULT_SUCCESS"}
        )
        await message.ack()

    async def half_done() -> bool:
        return (await service.get(job_id)).counts.completed == 5

    await eventually(half_done, within=30)

    # Then, once nothing has moved for the stall time, it says so, with no rate and no ETA
    async def stalled() -> bool:
        return "no item has finished for" in ((await service.get(job_id)).status_reason or "")

    await eventually(stalled, within=30)
    quiet = await service.get(job_id)
    assert quiet.status is JobStatus.ACTIVE
    assert (quiet.eta_seconds, quiet.items_per_second) == (None, 0.0)
    assert "no worker is polling" not in (quiet.status_reason or "")

    # and when the rest come back it completes as usual
    for message in tasks[5:]:
        body = json.loads(message.body)
        await publish(
            rabbit, settings.rabbitmq.tracking_pipe, {**body, "taskStatus": "RESULT_SUCCESS"}
        )
        await message.ack()
    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 60)
    assert (done.status, done.counts.completed, done.status_reason) == (
        JobStatus.COMPLETED,
        10,
        None,
    )
