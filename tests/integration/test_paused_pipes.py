"""A two-stage pipeline under pause and cancel: stage A's results are recorded and held on the
job's paused pipe while it is paused, passed on to stage B once when it resumes, and dropped
when it is cancelled or deleted, through a worker killed and a broker restarted meanwhile."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aio_pika.exceptions import ChannelNotFoundEntity

from jobservice.jobs.definition import JobDefinition
from jobservice.jobs.job import JobView
from jobservice.jobs.pipes import paused_pipe
from jobservice.jobs.public import API_BASE_PATH
from jobservice.jobs.status import DEFAULT_PARTITION, JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings, Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.processes import start_reference_worker
from tests.integration.rabbit import NewQueue, depth, rabbit_connection, rabbitmqctl
from tests.integration.support import eventually, job

ITEMS = 400
WINDOW = 200
ITEM_MILLIS = "40"
"""Stage A takes 40 ms an item, one at a time: a window of 200 out takes 8 s to come back."""
HELD_SECONDS = 10.0
JOBS = f"{API_BASE_PATH}/partitions/{DEFAULT_PARTITION}/jobs"
HTML = {"Accept": "text/html"}
HONOURED_WITHIN = 0.5
"""The tracking side reads a job's status at most 0.05 s old, then publishes."""


@pytest.fixture
def engine() -> EngineSettings:
    return EngineSettings(chunk_size=50, in_flight_window=WINDOW, progress_interval_seconds=0.2)


@pytest.fixture
async def stage_b(new_queue: NewQueue) -> str:
    return await new_queue("stage-b")


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[AbstractRobustConnection]:
    """A connection of the test's own, for questions that close a channel."""
    connection = await rabbit_connection(settings.rabbitmq)
    async with connection:
        yield connection


@pytest.fixture
def stage_a(
    target_queue: str, stage_b: str, request: pytest.FixtureRequest
) -> Iterator[subprocess.Popen[str]]:
    """A slow worker on stage A, answering each item with ``to`` = stage B."""
    worker = start_reference_worker(
        target_queue, "--result-queue", stage_b, "--item-millis", ITEM_MILLIS
    )
    yield worker
    worker.terminate()
    worker.wait(30)


def pipe_of(settings: Settings, job_id: str) -> str:
    return paused_pipe(settings.rabbitmq.tracking_pipe, DEFAULT_PARTITION, job_id)


async def exists(connection: AbstractRobustConnection, queue: str) -> bool:
    channel = await connection.channel()
    try:
        await channel.declare_queue(queue, passive=True)
    except ChannelNotFoundEntity:
        return False
    await channel.close()
    return True


async def items_in(connection: AbstractRobustConnection, queue: str) -> Counter[str]:
    """The task ids of the results in ``queue``, each as often as it is there (left there)."""
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, durable=True)
    found: Counter[str] = Counter()
    while (message := await declared.get(fail=False)) is not None:
        found[json.loads(message.body)["tracking"]["jobTaskId"]] += 1
    await channel.close()  # unacked: back on the queue
    return found


async def completed_at_least(service: JobService, job_id: str, count: int) -> JobView:
    async def enough() -> bool:
        return (await service.get(job_id)).counts.completed >= count

    await eventually(enough, within=60)
    return await service.get(job_id)


async def paused_holding(
    service: JobService, definition: JobDefinition, job_id: str, pipe: str, held: int
) -> None:
    """Submit a job, pause it once it is under way, and wait until its paused pipe holds
    ``held`` results."""
    await service.submit(job_id, definition)
    await completed_at_least(service, job_id, held)
    await service.pause(job_id)

    async def holding() -> bool:
        return (await service.get(job_id)).held_messages >= held

    await eventually(holding, within=30)


async def finished(service: JobService, job_id: str) -> JobView:
    return await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)


def of_job(found: Counter[str], job_id: str) -> Counter[str]:
    """Of ``found``, the results of items of ``job_id`` (task ids read ``partition:job.path``)."""
    return Counter(
        {task: n for task, n in found.items() if task.partition(":")[2].split(".")[0] == job_id}
    )


async def test_a_paused_job_holds_its_results_and_resume_passes_each_on_once(
    service: JobService,
    http: httpx.AsyncClient,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    broker: AbstractRobustConnection,
    target_queue: str,
    stage_b: str,
    stage_a: subprocess.Popen[str],
    owned_queues: list[str],
) -> None:
    job_id = unique("pipeline")
    owned_queues.append(pipe_of(settings, job_id))
    await service.submit(job_id, job("range", f"0-{ITEMS}", target_queue))
    await completed_at_least(service, job_id, 20)

    # When the job is paused with its window out at stage A (a result whose job's status was
    # read just before the pause may still be on its way: the tracking side honours a pause
    # within moments, as the chunks do)
    assert (await service.pause(job_id)).status is JobStatus.PAUSED
    await asyncio.sleep(HONOURED_WITHIN)
    at_pause = await depth(rabbit, stage_b)
    counted_at_pause = (await service.get(job_id)).counts.completed

    # Then for 10 s stage A's results go on being counted, and none reaches stage B
    await asyncio.sleep(HELD_SECONDS)
    paused = await service.get(job_id)
    assert paused.status is JobStatus.PAUSED
    assert paused.counts.completed > counted_at_pause + 50
    assert await depth(rabbit, stage_b) == at_pause
    # they wait on the job's paused pipe, and the job says how many, in the REST API and on
    # its dashboard page
    held = await depth(rabbit, pipe_of(settings, job_id))
    assert held >= 50
    assert paused.held_messages >= held
    rest = (await http.get(f"{JOBS}/{job_id}")).json()
    assert rest["status"] == "Paused" and rest["heldMessages"] >= held
    page = (await http.get(f"/dashboard/partitions/default/jobs/{job_id}", headers=HTML)).text
    assert re.search(r"<dt[^>]*>Held</dt><dd>[\d,]+</dd>", page), page

    # When it resumes, the job completes and stage B has each item's result exactly once
    await service.resume(job_id)
    done = await finished(service, job_id)
    assert (done.status, done.counts.completed) == (JobStatus.COMPLETED, ITEMS)

    async def all_passed_on() -> bool:
        return await depth(rabbit, stage_b) >= ITEMS

    await eventually(all_passed_on, within=30)
    await asyncio.sleep(1)
    results = await items_in(broker, stage_b)
    assert len(results) == ITEMS and set(results.values()) == {1}
    # and the paused pipe is gone
    await eventually(lambda: _gone(broker, pipe_of(settings, job_id)), within=10)
    assert (await service.get(job_id)).dropped_messages == 0


async def _gone(connection: AbstractRobustConnection, queue: str) -> bool:
    return not await exists(connection, queue)


async def test_a_paused_job_cancelled_passes_nothing_more_on_and_its_paused_pipe_goes(
    service: JobService,
    http: httpx.AsyncClient,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    broker: AbstractRobustConnection,
    target_queue: str,
    stage_b: str,
    stage_a: subprocess.Popen[str],
    owned_queues: list[str],
) -> None:
    job_id = unique("cancelled")
    pipe = pipe_of(settings, job_id)
    owned_queues.append(pipe)
    await paused_holding(service, job("range", f"0-{ITEMS}", target_queue), job_id, pipe, 20)

    # When the paused job is cancelled while stage A still answers its window
    await service.cancel(job_id)
    await asyncio.sleep(HONOURED_WITHIN)
    at_cancel = await depth(rabbit, stage_b)

    # Then its paused pipe is removed with what it held, counted as dropped
    await eventually(lambda: _gone(broker, pipe), within=10)

    async def dropped_some() -> bool:
        return (await service.get(job_id)).dropped_messages >= 20

    await eventually(dropped_some, within=10)
    # and nothing more reaches stage B, however many results stage A still sends
    dropped = (await service.get(job_id)).dropped_messages
    await asyncio.sleep(5)
    assert await depth(rabbit, stage_b) == at_cancel
    after = await service.get(job_id)
    assert after.status is JobStatus.CANCELLED
    assert after.dropped_messages > dropped  # later results are dropped as they come
    assert not await exists(broker, pipe)
    # as the REST API, the dashboard and `jobservice status` say
    rest = (await http.get(f"{JOBS}/{job_id}")).json()
    assert rest["droppedMessages"] >= after.dropped_messages
    page = (await http.get(f"/dashboard/partitions/default/jobs/{job_id}", headers=HTML)).text
    assert re.search(r"<dt[^>]*>Dropped</dt><dd>[\d,]+</dd>", page), page
    status = await asyncio.to_thread(processes.run, settings, ["status", job_id])
    assert status.returncode == 0, status.stderr
    assert re.search(r"dropped +[\d,]+ results not passed on: the job ended", status.stdout)


async def test_two_jobs_on_the_same_stages_pausing_one_holds_only_its_own(
    service: JobService,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    broker: AbstractRobustConnection,
    target_queue: str,
    stage_b: str,
    stage_a: subprocess.Popen[str],
    owned_queues: list[str],
) -> None:
    paused_id, running_id = unique("held"), unique("running")
    owned_queues.append(pipe_of(settings, paused_id))
    await service.submit(paused_id, job("range", "0-200", target_queue))
    await service.submit(running_id, job("range", "0-200", target_queue))
    await completed_at_least(service, paused_id, 10)

    await service.pause(paused_id)
    await asyncio.sleep(HONOURED_WITHIN)
    before = of_job(await items_in(broker, stage_b), paused_id)

    # The running job's results go on reaching stage B (once stage A, one item at a time,
    # has got through the paused job's messages queued before them); the paused one's do not
    async def running_ones_there() -> bool:
        found = await items_in(broker, stage_b)
        assert of_job(found, paused_id) == before
        return sum(of_job(found, running_id).values()) > 0

    await eventually(running_ones_there, within=30, interval=0.5)
    assert of_job(await items_in(broker, stage_b), paused_id) == before
    assert (await service.get(paused_id)).held_messages > 0

    await service.resume(paused_id)
    for job_id in (paused_id, running_id):
        assert (await finished(service, job_id)).counts.completed == 200

    async def all_there() -> bool:
        return await depth(rabbit, stage_b) >= 400

    await eventually(all_there, within=30)
    found = await items_in(broker, stage_b)
    for job_id in (paused_id, running_id):
        results = of_job(found, job_id)
        assert len(results) == 200 and set(results.values()) == {1}


async def test_deleting_a_paused_job_removes_its_paused_pipe(
    service: JobService,
    settings: Settings,
    tracking_worker: None,
    rabbit: AbstractChannel,
    broker: AbstractRobustConnection,
    target_queue: str,
    stage_b: str,
    stage_a: subprocess.Popen[str],
    owned_queues: list[str],
) -> None:
    job_id = unique("deleted")
    pipe = pipe_of(settings, job_id)
    owned_queues.append(pipe)
    await paused_holding(service, job("range", "0-200", target_queue), job_id, pipe, 10)

    await service.delete(job_id)
    await asyncio.sleep(HONOURED_WITHIN)
    at_delete = await depth(rabbit, stage_b)

    await eventually(lambda: _gone(broker, pipe), within=10)
    await asyncio.sleep(2)
    assert await depth(rabbit, stage_b) == at_delete
    assert not await exists(broker, pipe)


async def test_held_results_survive_a_killed_worker_and_a_broker_restart_once_each(
    service: JobService,
    settings: Settings,
    target_queue: str,
    stage_b: str,
    stage_a: subprocess.Popen[str],
    owned_queues: list[str],
    broker_restarted: None,
) -> None:
    job_id = unique("survivor")
    pipe = pipe_of(settings, job_id)
    owned_queues.append(pipe)
    worker = processes.start(settings, "worker")
    try:
        await service.submit(job_id, job("range", f"0-{ITEMS}", target_queue))
        await completed_at_least(service, job_id, 20)
        await service.pause(job_id)
        await asyncio.sleep(2)

        # When the worker (and its tracking consumer) is killed while results are held
        worker.send_signal(signal.SIGKILL)
        await asyncio.to_thread(worker.wait, 30)
        # and RabbitMQ is restarted while they wait
        await asyncio.to_thread(rabbitmqctl, "stop_app")
        await asyncio.to_thread(rabbitmqctl, "start_app")
        worker = processes.start(settings, "worker")
        await asyncio.sleep(8)  # stage A answers the rest of its window meanwhile

        connection = await rabbit_connection(settings.rabbitmq)
        async with connection:
            channel = await connection.channel()
            assert await depth(channel, pipe) > 0
            assert await depth(channel, stage_b) < ITEMS

        # Then after resume every item's result reaches stage B, once
        await service.resume(job_id)
        done = await finished(service, job_id)
        assert (done.status, done.counts.completed) == (JobStatus.COMPLETED, ITEMS)
        connection = await rabbit_connection(settings.rabbitmq)
        async with connection:
            channel = await connection.channel()

            async def all_passed_on() -> bool:
                return await depth(channel, stage_b) >= ITEMS

            await eventually(all_passed_on, within=30)
            await asyncio.sleep(1)
            results = await items_in(connection, stage_b)
            assert len(results) == ITEMS and set(results.values()) == {1}
            await eventually(lambda: _gone(connection, pipe), within=10)
    finally:
        worker.terminate()
        await asyncio.to_thread(worker.wait, 30)


@pytest.mark.usefixtures("tracking_worker", "stage_a")
async def test_a_job_that_completes_while_paused_passes_on_what_it_held(
    service: JobService,
    settings: Settings,
    rabbit: AbstractChannel,
    broker: AbstractRobustConnection,
    target_queue: str,
    stage_b: str,
    owned_queues: list[str],
) -> None:
    # Given a job whose every item is out at stage A when it is paused
    job_id = unique("completes")
    pipe = pipe_of(settings, job_id)
    owned_queues.append(pipe)
    await paused_holding(service, job("range", "0-200", target_queue), job_id, pipe, 10)

    # When stage A answers the rest, the job completes: nothing of it is left to start
    done = await finished(service, job_id)
    assert (done.status, done.counts.completed) == (JobStatus.COMPLETED, 200)

    # Then what it held goes on: each item's result once in stage B, and the pipe goes
    async def all_passed_on() -> bool:
        return await depth(rabbit, stage_b) >= 200

    await eventually(all_passed_on, within=30)
    await eventually(lambda: _gone(broker, pipe), within=10)
    results = await items_in(broker, stage_b)
    assert len(results) == 200 and set(results.values()) == {1}
