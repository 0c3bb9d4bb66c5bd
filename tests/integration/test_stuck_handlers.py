"""A handler call that never returns holds neither its job, the worker's other jobs, a pause,
a cancel nor the worker's shutdown."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.jobs.definition import NewJob
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.plugins.registry import Registry, installed
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings, Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.blocking import BLOCK_ITEMS, MARKERS, RELEASED, BlockingHandler, plugin_path
from tests.integration.support import API, eventually, job, job_body, workflow_runs

STUCK_LIMIT = 4
"""Abandoned handler calls the tests' workers keep."""
GRACE_MARGIN = 1.0
"""Seconds past its grace a stopped worker may take to be gone, counted from the signal."""


@pytest.fixture
def engine(engine: EngineSettings) -> EngineSettings:
    """A heartbeat timeout far beyond the tests' waits: a stuck chunk is not rescued by
    Temporal timing it out, only by the worker itself."""
    return engine.model_copy(update={"heartbeat_timeout_seconds": 60.0})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_stuck_handler_threads": STUCK_LIMIT})


@pytest.fixture
def blocking() -> Iterator[BlockingHandler]:
    handler = BlockingHandler()
    yield handler
    handler.released.set()  # lets the calls this test left stuck end


@pytest.fixture
def registry(blocking: BlockingHandler) -> Registry:
    return installed().extended(handlers={"block": blocking})


def blocking_job(
    items: int, blocked: str, *, timeout: float | None, tolerance: str | None = None
) -> NewJob:
    """A job of ``items`` numbers to ``local:block``, whose ``blocked`` items block."""
    definition = job(
        "range",
        f"0-{items}",
        "local:block",
        task_message_params={BLOCK_ITEMS: blocked},
        failure_tolerance=tolerance,
    )
    body = NewJob.from_definition(definition).model_dump(mode="json", by_alias=True)
    return NewJob.model_validate({**body, "handlerTimeoutSeconds": timeout})


async def finished(service: JobService, job_id: str, within: float = 60) -> JobView:
    return await asyncio.wait_for(service.wait(job_id, interval=0.2), within)


async def blocked_on(handler: BlockingHandler, item: int) -> None:
    async def there() -> bool:
        return item in handler.blocked

    await eventually(there, within=30, interval=0.05)


async def test_items_whose_handler_overruns_its_time_limit_fail_and_the_others_complete(
    service: JobService, worker: Worker, blocking: BlockingHandler
) -> None:
    # Given a job of 50 items whose handler blocks on three of them, with a limit of 1 s
    job_id = unique("overrun")
    await service.submit(job_id, blocking_job(50, "3,17,42", timeout=1, tolerance="3"))

    # Then it completes, with exactly those three items failed for their time limit
    done = await finished(service, job_id)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (50, 47, 3)
    assert {f.failure_id.rsplit(".", 1)[1] for f in done.failures} == {"4", "18", "43"}
    for failure in done.failures:
        assert failure.failure_source == "item handler local:block"
        assert failure.failure_message.startswith(
            "item handler local:block took longer than 1 s"
        ), failure.failure_message
    # and every other item was handled once, the items after a stuck one included
    assert blocking.seen == Counter(range(50))


async def test_a_small_job_beside_many_stuck_jobs_finishes_within_seconds(
    service: JobService, worker: Worker, blocking: BlockingHandler
) -> None:
    # Given ten jobs whose every item blocks, more than the worker has activity slots
    stuck = [unique(f"stuck{n}") for n in range(10)]
    for job_id in stuck:
        await service.submit(job_id, blocking_job(10, "all", timeout=1, tolerance="100%"))
    await blocked_on(blocking, 0)

    # When a small job of another handler comes in beside them
    small = unique("small")
    started = time.monotonic()
    await service.submit(small, job("range", "0-10", "local:noop"))

    # Then it finishes within seconds, and so do the stuck ones, every item failed: first
    # for the time limit, then, once the worker holds its most abandoned calls, at once
    done = await finished(service, small, within=30)
    assert (done.status, done.counts.completed, done.counts.total) == (JobStatus.COMPLETED, 10, 10)
    assert time.monotonic() - started < 30
    messages: list[str] = []
    for job_id in stuck:
        view = await finished(service, job_id, within=60)
        assert (view.counts.total, view.counts.completed, view.counts.failed) == (10, 0, 10)
        messages += [f.failure_message for f in view.failures]
    assert len(messages) == 100
    overran = [m for m in messages if "took longer than 1 s" in m]
    refused = [m for m in messages if f"most this worker keeps ({STUCK_LIMIT})" in m]
    assert overran and refused and len(overran) + len(refused) == 100, set(messages)


async def test_pause_reaches_a_chunk_whose_handler_is_stuck_and_resume_redoes_its_item(
    service: JobService, worker: Worker, blocking: BlockingHandler
) -> None:
    # Given a job whose handler is stuck on item 5, its time limit far away
    job_id = unique("pause-stuck")
    await service.submit(job_id, blocking_job(20, "5", timeout=600))
    await blocked_on(blocking, 5)

    # When it is paused
    assert (await service.pause(job_id)).status is JobStatus.PAUSED

    # Then within seconds its chunk hands back the five items before the stuck one, and no
    # more; the stuck item is still to do
    async def handed_back() -> bool:
        return (await service.get(job_id)).counts.completed == 5

    await eventually(handed_back, within=10)
    await asyncio.sleep(2)
    held = await service.get(job_id)
    assert held.status is JobStatus.PAUSED
    assert (held.counts.completed, held.counts.failed, held.counts.in_flight) == (5, 0, 0)
    assert blocking.seen.total() == 6

    # When the handler would no longer block and the job is resumed
    blocking.released.set()
    resumed = await service.resume(job_id)
    assert resumed.status in (JobStatus.ACTIVE, JobStatus.COMPLETED)  # 15 items go fast

    # Then it completes with every item counted once; the stuck item was handled again
    done = await finished(service, job_id)
    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (20, 20, 0)
    assert blocking.seen == Counter({n: 2 if n == 5 else 1 for n in range(20)})


async def test_cancel_reaches_a_chunk_whose_handler_is_stuck(
    service: JobService, worker: Worker, blocking: BlockingHandler, client: Client
) -> None:
    # Given a job whose handler is stuck on item 5, its time limit far away
    job_id = unique("cancel-stuck")
    await service.submit(job_id, blocking_job(20, "5", timeout=600))
    await blocked_on(blocking, 5)

    # When it is cancelled
    await service.cancel(job_id)

    # Then its whole tree is closed within seconds
    async def tree_closed() -> bool:
        runs = await workflow_runs(client, "default", job_id)
        return bool(runs) and all(status != "RUNNING" for _, status in runs)

    await eventually(tree_closed, within=15)

    # and it keeps the counts of the items before the stuck one; nothing else ran
    async def counted() -> bool:
        return (await service.get(job_id)).counts.completed == 5

    await eventually(counted, within=5)
    view = await service.get(job_id)
    assert view.status is JobStatus.CANCELLED
    assert (view.counts.completed, view.counts.failed) == (5, 0)
    assert blocking.seen.total() == 6


async def test_a_worker_whose_handler_is_stuck_stops_within_its_grace_and_another_finishes(
    service: JobService, settings: Settings, tmp_path: Path
) -> None:
    # Given a worker process whose handler blocks for good on item 10 of a job of 30
    grace = 3.0
    markers = tmp_path / "markers"
    markers.mkdir()
    plugins = plugin_path(tmp_path / "plugins")
    env = {
        **plugins,
        MARKERS: str(markers),
        "JOBSERVICE_WORKER_SHUTDOWN_GRACE_SECONDS": str(grace),
    }
    first = processes.start(settings, "worker", "--no-tracking", extra_env=env)
    job_id = unique("grace")
    second: subprocess.Popen[str] | None = None
    try:
        await service.submit(job_id, blocking_job(30, "10", timeout=600))

        async def stuck() -> bool:
            return (markers / "10").exists() or first.poll() is not None

        await eventually(stuck, within=60)
        assert first.poll() is None, first.communicate()

        # When it is told to stop
        stopping = time.monotonic()
        first.send_signal(signal.SIGTERM)

        # Then it exits by itself within its grace, and a second for the process to close
        try:
            await asyncio.to_thread(first.wait, grace + GRACE_MARGIN)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the worker did not exit within {grace + GRACE_MARGIN} s of its stop"
            ) from None
        assert time.monotonic() - stopping < grace + GRACE_MARGIN
        assert first.returncode == 0, first.communicate()

        # and a worker whose handler does not block finishes the job from the cursor it left
        second = processes.start(
            settings, "worker", "--no-tracking", extra_env={**plugins, RELEASED: "1"}
        )
        done = await finished(service, job_id, within=45)
        assert done.status is JobStatus.COMPLETED
        assert (done.counts.total, done.counts.completed, done.counts.failed) == (30, 30, 0)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()


async def test_a_handler_time_limit_over_the_maximum_is_refused(
    http: httpx.AsyncClient, settings: Settings, partition: str
) -> None:
    url = f"{API}/partitions/{partition}/jobs/"
    maximum = settings.engine.handler_timeout_max_seconds

    over = await http.put(
        url + "over", json=job_body(target="local:noop", handlerTimeoutSeconds=maximum + 1)
    )
    assert over.status_code == 400, over.text
    assert "handlerTimeoutSeconds" in over.json()["message"]
    assert f"{maximum:g}" in over.json()["message"]

    zero = await http.put(url + "zero", json=job_body(target="local:noop", handlerTimeoutSeconds=0))
    assert zero.status_code == 400, zero.text
    assert "handlerTimeoutSeconds" in zero.json()["message"]

    at_most = await http.put(
        url + "at-most", json=job_body(target="local:noop", handlerTimeoutSeconds=maximum)
    )
    assert at_most.status_code == 201, at_most.text
