"""Steering a running job: its rate limit holds across its whole tree and every worker, and
its rate, window, tolerance and priority change while it runs, through a Workflow Update that
refuses what the job cannot take before anything reaches its history."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.errors import InvalidJobError, JobStateError
from jobservice.jobs.status import JobStatus
from jobservice.jobs.taskids import workflow_id
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings, Settings
from jobservice.temporal.orchestration import JobWorkflows
from tests.conftest import unique
from tests.integration import processes
from tests.integration.handlers import FailMarkedHandler, TimedHandler
from tests.integration.support import eventually, job

BOUND = 0.05
"""How far a job's rate may stray from its limit over a window of ten seconds."""


@pytest.fixture
def engine() -> EngineSettings:
    """Chunks of a few hundred items, a tree several batches wide, short histories."""
    return EngineSettings(
        chunk_size=250,
        batch_window=4,
        chunk_window=2,
        progress_interval_seconds=0.2,
        heartbeat_timeout_seconds=2.0,
        max_attempts=3,
        history_limit=300,  # batches continue as new often: steering must outlive it
    )


def _within(counts: list[int], expected: float) -> None:
    assert counts, "no full window was measured"
    worst = max(counts, key=lambda count: abs(count - expected))
    assert abs(worst - expected) <= BOUND * expected, f"{counts} against {expected:g}"


async def _to_end(service: JobService, job_id: str) -> None:
    await asyncio.wait_for(service.wait(job_id, interval=0.2), 180)


async def test_the_rate_holds_within_its_bound_over_every_ten_seconds(
    service: JobService, worker: Worker, timed: TimedHandler
) -> None:
    # Given a job of 8,000 items in a tree of 16 batches, limited to 500 items a second
    job_id = unique("paced")
    await service.submit(job_id, job("range", "0-8000/500", "local:timed", rate_limit=500))

    # When it runs to its end
    await _to_end(service, job_id)
    done = await service.get(job_id)

    # Then it is complete, and every window of ten seconds once it runs holds 5,000 +- 5 %
    assert (done.status, done.counts.completed) == (JobStatus.COMPLETED, 8000)
    first, last = min(timed.times), max(timed.times)
    assert last - first >= 15  # 8,000 at 500 a second: no faster
    _within(timed.windows(10, first + 1, last - 0.5), 5000)
    assert done.rate_limit == 500


async def test_a_tune_takes_effect_within_two_seconds_and_is_kept(
    service: JobService, worker: Worker, timed: TimedHandler, job_store: object
) -> None:
    # Given a job running at 300 items a second
    job_id = unique("tuned")
    await service.submit(job_id, job("range", "0-20000/500", "local:timed", rate_limit=300))
    await eventually(lambda: _handled(timed, 600))

    # When it is tuned to 1,000 a second
    tuned_at = time.monotonic()
    tuned = await service.tune(job_id, {"rateLimit": 1000})

    # Then the job says so at once, and from two seconds on it goes at the new rate, within
    # 5 % over ten seconds
    assert tuned.rate_limit == 1000
    await asyncio.sleep(12)
    _within(timed.windows(10, tuned_at + 2, tuned_at + 12, step=1), 10_000)
    assert (await service.get(job_id)).rate_limit == 1000

    # And tuned down to 200, likewise
    slowed_at = time.monotonic()
    await service.tune(job_id, {"rateLimit": 200})
    await asyncio.sleep(12)
    _within(timed.windows(10, slowed_at + 2, slowed_at + 12, step=1), 2000)
    await service.cancel(job_id)


async def _handled(timed: TimedHandler, items: int) -> bool:
    return len(timed.times) >= items


async def test_impossible_values_are_refused_and_leave_no_trace_in_the_history(
    service: JobService,
    worker: Worker,
    marked_handler: FailMarkedHandler,
    client: Client,
    settings: Settings,
) -> None:
    # Given a running job that has failed 10 items, tolerating 20
    marked_handler.marked = set(range(10))
    job_id = unique("refused")
    definition = job(
        "range", "0-6000/500", "local:fail-marked", failure_tolerance="20", rate_limit=300
    )
    await service.submit(job_id, definition)
    await eventually(lambda: _failed(service, job_id, 10))
    handle = client.get_workflow_handle(workflow_id("default", job_id))
    before = await _updates_in_history(handle)

    # When each impossible value is asked for, of the service and of the job's workflow
    # itself (as the Temporal CLI would)
    workflows = JobWorkflows(client, settings.temporal)
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"rateLimit": -5}, "is not a rate"),
        ({"rateLimit": 0}, "is not a rate"),
        ({"inFlightWindow": 10_000_000}, "is over 50,000"),
        ({"priority": 9}, "is not one of 1"),
        ({"failureTolerance": "5"}, "has failed already: 10 of"),
        ({"failureTolerance": "x"}, "neither a count"),
        ({"colour": "red"}, "cannot be tuned"),
    ]
    for patch, reason in refusals:
        with pytest.raises(InvalidJobError, match=reason):
            await service.tune(job_id, patch)
        with pytest.raises(InvalidJobError, match=reason):
            await workflows.tune("default", job_id, patch)

    # Then the history holds no Update, and the job runs on as it was
    assert await _updates_in_history(handle) == before == 0
    running = await service.get(job_id)
    assert (running.status, running.failure_tolerance) == (JobStatus.ACTIVE, "20")
    await service.cancel(job_id)

    # And a job that has ended cannot be tuned
    with pytest.raises(JobStateError, match="cannot be tuned"):
        await service.tune(job_id, {"rateLimit": 100})


async def _failed(service: JobService, job_id: str, items: int) -> bool:
    return (await service.get(job_id)).counts.failed >= items


async def _updates_in_history(handle: object) -> int:
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import WorkflowHandle

    assert isinstance(handle, WorkflowHandle)
    updates = {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    }
    found = 0
    async for event in handle.fetch_history_events():
        found += event.event_type in updates
    return found


async def test_a_paused_job_is_tuned_and_resumes_at_the_new_rate(
    service: JobService, worker: Worker, timed: TimedHandler
) -> None:
    # Given a job at 300 a second, paused
    job_id = unique("paused-tune")
    await service.submit(job_id, job("range", "0-20000/500", "local:timed", rate_limit=300))
    await eventually(lambda: _handled(timed, 300))
    await service.pause(job_id)
    await asyncio.sleep(2)

    # When it is tuned while paused, and resumed
    paused = await service.tune(job_id, {"rateLimit": 800, "priority": 2})
    assert (paused.status, paused.rate_limit, paused.priority) == (JobStatus.PAUSED, 800, 2)
    still = len(timed.times)
    await asyncio.sleep(1)
    assert len(timed.times) == still  # a tune does not resume it
    resumed_at = time.monotonic()
    await service.resume(job_id)

    # Then it goes on at the new rate
    await asyncio.sleep(8)
    _within(timed.windows(5, resumed_at + 2, resumed_at + 8), 4000)
    await service.cancel(job_id)


async def test_a_tuned_value_outlives_continue_as_new(
    service: JobService, worker: Worker, timed: TimedHandler, client: Client
) -> None:
    # Given a job whose root batch continues as new every hundred chunks or so
    job_id = unique("kept")
    await service.submit(job_id, job("range", "0-60000", "local:timed", rate_limit=3000))
    await eventually(lambda: _handled(timed, 1000))

    # When it is tuned, and its workflow has continued as new since
    await service.tune(job_id, {"rateLimit": 1500})
    handle = client.get_workflow_handle(workflow_id("default", job_id))
    first_run = (await handle.describe()).run_id
    await eventually(lambda: _new_run(handle, first_run), within=60)

    # Then the new run keeps the tuned rate
    after = time.monotonic()
    await asyncio.sleep(7)
    _within(timed.windows(5, after + 1, after + 7), 7500)
    assert (await service.get(job_id)).rate_limit == 1500
    await service.cancel(job_id)


async def _new_run(handle: object, run_id: str | None) -> bool:
    from temporalio.client import WorkflowHandle

    assert isinstance(handle, WorkflowHandle)
    return (await handle.describe()).run_id != run_id


async def test_two_worker_processes_share_one_jobs_rate_to_a_queue(
    service: JobService,
    settings: Settings,
    target_queue: str,
    rabbit: AbstractChannel,
    client: Client,
) -> None:
    # Given two worker processes, and a consumer that notes when each task message arrives
    workers = [processes.start(settings, "worker"), processes.start(settings, "worker")]
    arrived: list[float] = []
    priorities: set[int | None] = set()

    async def note(message: AbstractIncomingMessage) -> None:
        arrived.append(time.monotonic())
        priorities.add(message.priority)

    queue = await rabbit.declare_queue(target_queue, durable=True)
    await queue.consume(note, no_ack=True)
    try:
        # When a job of four batches publishes 6,000 items at most 400 a second, as urgent as
        # can be (all four at once: no result comes back, and a batch ends only once its
        # items have one)
        job_id = unique("shared")
        definition = job(
            "range",
            "0-6000/1500",
            target_queue,
            rate_limit=400,
            in_flight_window=50_000,
            priority=1,
        )
        await service.submit(job_id, definition)
        await eventually(lambda: _arrived(arrived, 6000), within=60)
    finally:
        processes.stop(*workers)

    # Then both workers sent chunks, together keeping to the rate, every message with the
    # job's priority
    first, last = min(arrived), max(arrived)
    _within(_windows(arrived, 10, first + 1, last - 0.5), 4000)
    assert priorities == {5}
    assert len(await _chunk_workers(client, job_id)) == 2


async def _chunk_workers(client: Client, job_id: str) -> set[str]:
    """The identities of the workers that started the chunks of the job's batches."""
    from temporalio.api.enums.v1 import EventType

    identities: set[str] = set()
    batches = f"WorkflowId STARTS_WITH '{workflow_id('default', job_id)}'"
    async for run in client.list_workflows(batches):
        handle = client.get_workflow_handle(run.id, run_id=run.run_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                identities.add(event.activity_task_started_event_attributes.identity)
    return identities


async def _arrived(arrived: list[float], count: int) -> bool:
    return len(arrived) >= count


def _windows(times: list[float], seconds: float, start: float, end: float) -> list[int]:
    counts, at = [], start
    while at + seconds <= end + 1e-9:
        counts.append(sum(1 for t in times if at <= t < at + seconds))
        at += 1
    return counts


async def test_an_urgent_job_is_served_before_a_busy_task_queue(
    service: JobService, client: Client, settings: Settings, registry: object, job_store: object
) -> None:
    # Given a worker of two activity slots, kept busy by a big job whose chunks queue for them
    from jobservice.db.store import JobStore
    from jobservice.plugins.registry import Registry
    from jobservice.processes.worker import build_worker

    assert isinstance(registry, Registry) and isinstance(job_store, JobStore)
    narrow = settings.model_copy(update={"worker_max_concurrent_activities": 2})
    busy = {"sleepMillis": "4"}
    async with build_worker(client, settings=narrow, registry=registry, store=job_store):
        big = unique("big")
        await service.submit(big, job("range", "0-200000/1000", task_message_params=busy))
        await eventually(lambda: _done_beyond(service, big, 500))

        # When a job of the least priority, then one of the most, are submitted
        low, urgent = unique("low"), unique("urgent")
        await service.submit(low, job("range", "0-10", priority=5))
        await service.submit(urgent, job("range", "0-10", priority=1))

        # Then the urgent job completes, while the one of the least still waits behind the
        # big job's chunks: with priorities alike, it would have had its turn among them
        await asyncio.wait_for(service.wait(urgent, interval=0.1), 60)
        assert (await service.get(low)).counts.completed == 0
        await service.cancel(big)


async def _done_beyond(service: JobService, job_id: str, items: int) -> bool:
    return (await service.get(job_id)).counts.completed > items


async def test_a_redrive_past_its_tolerance_is_tuned(
    service: JobService, worker: Worker, marked_handler: FailMarkedHandler
) -> None:
    # Given a job that failed beyond its tolerance of none, redriven and carrying on
    marked_handler.marked = {5}
    job_id = unique("redriven")
    await service.submit(job_id, job("range", "0-3000", "local:fail-marked", rate_limit=300))
    await _to_end(service, job_id)
    assert (await service.get(job_id)).status is JobStatus.FAILED
    marked_handler.marked = set()
    await service.redrive(job_id)
    await eventually(lambda: _status(service, job_id, JobStatus.ACTIVE))

    # When its rate is tuned, its tolerance untouched
    tuned = await service.tune(job_id, {"rateLimit": 600})

    # Then the change is taken: a redrive is judged by its tolerance once it has ended
    assert tuned.rate_limit == 600
    await service.cancel(job_id)


async def _status(service: JobService, job_id: str, status: JobStatus) -> bool:
    return (await service.get(job_id)).status is status


async def test_a_tuned_rate_outlives_its_worker_killed(
    service: JobService, settings: Settings, target_queue: str, rabbit: AbstractChannel
) -> None:
    # Given a job publishing at 400 a second on a worker process, tuned to 800
    arrived: list[float] = []

    async def note(message: AbstractIncomingMessage) -> None:
        arrived.append(time.monotonic())

    queue = await rabbit.declare_queue(target_queue, durable=True)
    await queue.consume(note, no_ack=True)
    first = processes.start(settings, "worker")
    second = None
    try:
        job_id = unique("outlives")
        definition = job("range", "0-40000", target_queue, rate_limit=400, in_flight_window=50_000)
        await service.submit(job_id, definition)
        await eventually(lambda: _arrived(arrived, 800), within=60)
        await service.tune(job_id, {"rateLimit": 800})

        # When its worker is killed, and another takes over
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = processes.start(settings, "worker")

        # Then the new worker goes on at the tuned rate
        await eventually(lambda: _arrived_since(arrived, time.monotonic() - 1), within=60)
        # The new worker waits out the dead one's workflow tasks and chunks (their timeouts):
        # here about a dozen seconds of a few bursts and gaps, then the tuned rate.
        await asyncio.sleep(16)
        start = time.monotonic()
        await asyncio.sleep(5)
        _within(_windows(arrived, 5, start, start + 5), 4000)
        assert (await service.get(job_id)).rate_limit == 800
        await service.cancel(job_id)
    finally:
        processes.stop(first, second)


async def _arrived_since(arrived: list[float], since: float) -> bool:
    return bool(arrived) and arrived[-1] >= since
