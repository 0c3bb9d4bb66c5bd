"""One job does not hold the others back: a small job beside a big one starts within seconds.

The big job: 3,000,000 items whose handler sleeps 1 ms each, on a worker of two activity slots,
so that both slots are taken by its chunks of five seconds and a score more wait for one:
without fairness a new job's tasks queue behind them all, a minute or more.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.models import JobStatus
from jobservice.service import JobService
from jobservice.settings import EngineSettings, Settings
from tests.conftest import unique
from tests.integration.handlers import RecordingHandler
from tests.integration.support import eventually, job

BIG = "0-3000000"
SLOW = {"sleepMillis": "1"}
STARTS_WITHIN = 60.0
"""Seconds: the small job's first item needs three or four activities in turn, each waiting
for one of the worker's two slots, which the big job's chunks hold for up to their 5 s budget;
on a loaded 2-core machine that once took over 30 s. Without fairness each of them waits
behind the whole backlog instead: minutes."""


@pytest.fixture
def engine() -> EngineSettings:
    """The production chunks: each chunk of the big job holds a slot for seconds. A smaller
    batch budget than production's keeps the tree to a few dozen batches: enough chunks to fill
    the queue, and little left for the dev server to wind down for the tests after this one."""
    return EngineSettings(batch_budget=16, heartbeat_timeout_seconds=5.0)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A worker with few activity slots: the big job's chunks queue up for them."""
    return settings.model_copy(update={"worker_max_concurrent_activities": 2})


async def running_batches(client: Client, job_id: str) -> int:
    query = f"WorkflowId STARTS_WITH 'job/default/{job_id}/' AND ExecutionStatus = 'Running'"
    return (await client.count_workflows(query)).count


async def test_a_small_job_beside_a_big_one_starts_within_seconds_and_finishes(
    service: JobService, worker: Worker, client: Client, recorder: RecordingHandler
) -> None:
    # Given a big job well under way: dozens of batches, each with chunks waiting for a slot
    big = unique("big")
    await service.submit(big, job("range", BIG, "local:sleep", task_message_params=SLOW))

    async def backlogged() -> bool:
        view = await service.get(big)
        return view.counts.completed > 0 and await running_batches(client, big) >= 20

    try:
        await eventually(backlogged, within=120, interval=0.5)

        # When a small job is submitted beside it
        small = unique("small")
        submitted = time.monotonic()
        await service.submit(small, job("range", "0-10"))

        # Then its first item is handled within seconds, and it completes soon after
        async def started() -> bool:
            return any(task_id.startswith(f"default:{small}.") for task_id in recorder.task_ids)

        await eventually(started, within=STARTS_WITHIN, interval=0.1)
        first_item = time.monotonic() - submitted

        async def completed() -> bool:
            return (await service.get(small)).status is JobStatus.COMPLETED

        await eventually(completed, within=STARTS_WITHIN, interval=0.1)
        view = await service.get(small)
        assert view.counts.completed == 10
        assert sorted(recorder.seen) == list(range(10)), f"first item after {first_item:.1f} s"
        assert (await service.get(big)).status is JobStatus.ACTIVE
    finally:
        await service.cancel(big)

        async def cancelled() -> bool:
            return (await service.get(big)).status is JobStatus.CANCELLED

        await eventually(cancelled, within=30, interval=0.2)


async def test_a_job_of_the_longest_partition_and_id_runs_under_its_own_fairness_key(
    service: JobService, worker: Worker, recorder: RecordingHandler
) -> None:
    # Given the longest partition and job id there are: 89 bytes, past Temporal's 64 for a key
    partition = unique("p").ljust(40, "p")
    job_id = unique("long").ljust(48, "j")

    await service.submit(job_id, job("range", "0-10"), partition=partition)
    done = await asyncio.wait_for(service.wait(job_id, partition=partition, interval=0.2), 60)

    assert done.status is JobStatus.COMPLETED
    assert done.counts.completed == 10
