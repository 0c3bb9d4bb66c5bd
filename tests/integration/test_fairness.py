"""One job does not hold the others back: a small job beside a big one starts within seconds.

The big job: 3,000,000 items whose handler sleeps 1 ms each, in leaves of 100,000, on a worker of
two activity slots. Each of its leaf batches keeps a dozen chunks out, and each chunk holds a slot
for its 2 s budget: about a hundred chunks queue for the two slots, so that first in, first out,
each task of a new job would wait behind them for a minute and a half, and the small job, whose
first item needs two activities in turn, for three minutes or more. With a fairness key per job
it is served next: it waits for a slot to come free, seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings, Settings
from tests.conftest import unique
from tests.integration.handlers import RecordingHandler
from tests.integration.support import eventually, job, workflow_runs

BIG = "0-3000000/100000"
SLOW = {"sleepMillis": "1"}
SLOTS = 2
CHUNK_SECONDS = 2.0
BACKLOG = 80
"""Chunks of the big job queued for the two slots before the small job comes: first in, first
out, each task of the small job would wait 80 x 2 s / 2 slots = 80 s behind them."""
STARTS_WITHIN = 30.0
"""Seconds from submit to the small job's first item. Served in turn, each of its two activities
waits for a slot to come free, every 2 s or so: measured here at 7 and 10 s, once 22 s (submitted
as the backlog first formed, which the test now waits past). The rest is margin for a loaded
machine; first in, first out, it takes minutes (with no key, this bound is what fails)."""
FINISHES_WITHIN = 15.0
"""Seconds from its first item to its row reading Completed: its ten items are one chunk."""


@pytest.fixture
def engine() -> EngineSettings:
    """Chunks that hold a slot for 2 s each, a dozen out per leaf batch: a deep backlog. A
    smaller batch budget than production's keeps the tree to a score of batches, and little left
    for the dev server to wind down for the tests after this one."""
    return EngineSettings(
        batch_budget=16,
        chunk_window=12,
        chunk_time_budget_seconds=CHUNK_SECONDS,
        heartbeat_timeout_seconds=5.0,
    )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A worker with few activity slots: the big job's chunks queue up for them."""
    return settings.model_copy(update={"worker_max_concurrent_activities": SLOTS})


async def activity_backlog(client: Client, task_queue: str) -> int:
    """Activity tasks waiting on the task queue for a worker, as Temporal counts them."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        )
    )
    return response.stats.approximate_backlog_count


async def test_a_small_job_beside_a_big_one_starts_within_seconds_and_finishes(
    service: JobService,
    worker: Worker,
    client: Client,
    settings: Settings,
    recorder: RecordingHandler,
) -> None:
    # Given a big job well under way, with chunks enough queued for the slots that first in,
    # first out, a new job's every task would wait behind them for more than a minute
    big = unique("big")
    await service.submit(big, job("range", BIG, "local:sleep", task_message_params=SLOW))

    async def backlogged() -> bool:
        view = await service.get(big)
        return (
            view.counts.completed >= 30_000
            and await activity_backlog(client, settings.temporal.task_queue) >= BACKLOG
        )

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

        await eventually(completed, within=FINISHES_WITHIN, interval=0.1)
        view = await service.get(small)
        assert view.counts.completed == 10
        assert sorted(recorder.seen) == list(range(10)), f"first item after {first_item:.1f} s"
        # and the big job's backlog was still there: the small job went ahead of it
        assert await activity_backlog(client, settings.temporal.task_queue) >= BACKLOG // 2
        assert (await service.get(big)).status is JobStatus.ACTIVE
    finally:
        await service.cancel(big)

        async def cancelled() -> bool:
            return (await service.get(big)).status is JobStatus.CANCELLED

        await eventually(cancelled, within=30, interval=0.2)


KEYED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
}
"""The events in which Temporal records the priority a workflow or an activity was given."""


async def fairness_keys(client: Client, partition: str, job_id: str) -> list[tuple[str, str]]:
    """(event, fairness key) of every workflow start and activity in the job's tree, as
    Temporal recorded them in the histories."""
    keys = []
    for workflow_id, _ in await workflow_runs(client, partition, job_id):
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            if event.event_type in KEYED:
                attributes = getattr(event, str(event.WhichOneof("attributes")))
                keys.append((EventType.Name(event.event_type), attributes.priority.fairness_key))
    return keys


async def test_a_job_of_the_longest_partition_and_id_runs_under_its_own_fairness_key(
    service: JobService, worker: Worker, client: Client, recorder: RecordingHandler
) -> None:
    # Given the longest partition and job id there are: 89 bytes, past Temporal's 64 for a key
    partition = unique("p").ljust(40, "p")
    job_id = unique("long").ljust(48, "j")
    # (a key of that length is the first 64 hex digits of the SHA-256 of partition/job id)
    expected = hashlib.sha256(f"{partition}/{job_id}".encode()).hexdigest()[:64]

    # in three leaves: a root that starts child batches, and activities in each
    await service.submit(job_id, job("range", "0-30/10"), partition=partition)
    done = await asyncio.wait_for(service.wait(job_id, partition=partition, interval=0.2), 60)

    assert done.status is JobStatus.COMPLETED
    assert done.counts.completed == 30
    # and every workflow and activity of it was given that key, as Temporal recorded it
    keys = await fairness_keys(client, partition, job_id)
    assert {EventType.Name(event) for event in KEYED} == {event for event, _ in keys}
    assert {key for _, key in keys} == {expected}, keys
