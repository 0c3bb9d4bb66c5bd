"""jobservice across hosts: Temporal, two workers, the API and an external worker each on a
host of its own (network namespaces on a bridge), talking over the network only.

Jobs go in and come out through the REST API on the client host. A worker cut off the network
or stopped mid-job leaves the other to finish, with every item counted once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import Client

from jobservice.client import AsyncJobServiceClient, JobPublic, JobStatus
from jobservice.settings import RabbitSettings, TemporalSettings
from jobservice.temporal.connection import connect
from tests.conftest import unique
from tests.integration.multihost import (
    HEARTBEAT_TIMEOUT_SECONDS,
    WORKER_A,
    WORKER_B,
    Deployment,
    Lab,
    lab,
    monitor_url,
)
from tests.integration.netns import Host, NamespacesUnavailableError, check_namespaces
from tests.integration.rabbit import delete_queues, rabbit_connection
from tests.integration.support import job

pytestmark = pytest.mark.slow

ITEMS_METRIC = "jobservice_items_total"
"""A worker's count of the items it handled, in its ``/metrics``."""
GRACE_SECONDS = 10.0
"""``JOBSERVICE_WORKER_SHUTDOWN_GRACE_SECONDS`` as the workers have it: the default."""


@pytest.fixture(scope="module")
async def hosts(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lab]:
    """The network, built once for the module; a failure, never a skip, where it cannot be."""
    try:
        check_namespaces()
    except NamespacesUnavailableError as exc:
        pytest.fail(f"these tests need hosts of their own and cannot make them: {exc}")
    async with lab(tmp_path_factory.mktemp("multihost")) as built:
        yield built


@pytest.fixture(scope="module")
async def temporal(hosts: Lab) -> Client:
    """A client of the Temporal host, for what only the execution histories tell."""
    return await connect(TemporalSettings(address=hosts.temporal.address))


@pytest.fixture
async def deployment(hosts: Lab) -> AsyncIterator[Deployment]:
    deployed = Deployment(hosts)
    try:
        yield deployed
    finally:
        await deployed.stop()
        print(deployed.logs())  # pytest shows it when the test failed
        await _delete_queues(deployed.tracking_pipe, deployed.dead_letter_pipe)


async def _delete_queues(*names: str) -> None:
    connection = await rabbit_connection(RabbitSettings())
    async with connection:
        await delete_queues(await connection.channel(), *names)


async def items_handled(host: Host) -> int:
    """The items the worker on ``host`` has handled, as its ``/metrics`` says."""
    # Not through a proxy the environment may name: the hosts are on this machine.
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        response = await http.get(f"{monitor_url(host)}/metrics")
    response.raise_for_status()
    samples = (
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    )
    return int(sum(sample.value for sample in samples if sample.name == ITEMS_METRIC))


async def finished(jobs: AsyncJobServiceClient, job_id: str, within: float) -> JobPublic:
    """The job once it has ended; fails when it has not ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (view := await jobs.get_job(job_id)).status.is_terminal:
        if loop.time() > deadline:
            raise AssertionError(f"{job_id} still {view.status} after {within}s: {view.counts}")
        await asyncio.sleep(0.5)
    return view


async def until_done(jobs: AsyncJobServiceClient, job_id: str, at_least: int) -> JobPublic:
    """The job once ``at_least`` of its items are done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while (view := await jobs.get_job(job_id)).counts.done < at_least:
        if view.status.is_terminal or loop.time() > deadline:
            raise AssertionError(f"{job_id} did not reach {at_least} items: {view}")
        await asyncio.sleep(0.2)
    return view


def exact(view: JobPublic) -> tuple[JobStatus, int, int, int]:
    """What an exactly counted job reads as: its status, total, completed and failed."""
    return (view.status, view.counts.total, view.counts.completed, view.counts.failed)


async def start_sleeping_job(jobs: AsyncJobServiceClient, job_id: str, items: int) -> None:
    """A job of ``items`` of a millisecond each, once a tenth of them are done: under way,
    with long enough to go to stop a worker in the middle of it."""
    sleeping = job("range", f"0-{items}", "local:sleep", task_message_params={"sleepMillis": "1"})
    await jobs.create_job(job_id, sleeping)
    await until_done(jobs, job_id, at_least=items // 10)


async def heartbeat_retries(client: Client, partition: str, job_id: str) -> int:
    """Chunks of the job that ran again because their worker went silent."""
    query = f"WorkflowId STARTS_WITH 'job/{partition}/{job_id}'"
    retried = 0
    async for execution in client.list_workflows(query):
        history = await client.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).fetch_history()
        for event in history.events:
            if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                continue
            failure = event.activity_task_started_event_attributes.last_failure
            timeout = failure.timeout_failure_info.timeout_type
            retried += timeout == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    return retried


async def test_a_million_items_complete_exactly_with_both_worker_hosts_doing_part(
    deployment: Deployment,
) -> None:
    api, worker_a, worker_b = await deployment.start_api_and_workers()
    partition, job_id = unique("p"), unique("million")

    async with AsyncJobServiceClient(api, partition=partition) as jobs:
        started = time.monotonic()
        await jobs.create_job(job_id, job("range", "0-1000000", "local:noop"))
        done = await finished(jobs, job_id, within=600)
        took = time.monotonic() - started

    assert exact(done) == (JobStatus.COMPLETED, 1_000_000, 1_000_000, 0)
    by_a, by_b = await items_handled(worker_a.host), await items_handled(worker_b.host)
    print(f"1,000,000 items in {took:.1f} s: {WORKER_A} {by_a}, {WORKER_B} {by_b}")
    assert by_a > 0 and by_b > 0, (by_a, by_b)
    assert by_a + by_b >= 1_000_000  # at least once; more only after a retry


async def test_a_queue_job_completes_through_the_reference_worker_on_its_own_host(
    deployment: Deployment,
) -> None:
    # Given a target queue, consumed by the reference worker on its host
    queue = unique("documents")
    connection = await rabbit_connection(RabbitSettings())
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True)
        try:
            await deployment.start_reference_worker(queue)
            api, _, _ = await deployment.start_api_and_workers()
            partition, job_id = unique("p"), unique("queue")
            items = 20_000

            # When a job sends its items there
            async with AsyncJobServiceClient(api, partition=partition) as jobs:
                started = time.monotonic()
                await jobs.create_job(job_id, job("range", f"0-{items}", queue))
                done = await finished(jobs, job_id, within=300)
                took = time.monotonic() - started
        finally:
            await channel.queue_delete(queue)

    # Then every item's result came back over the tracking pipe, once
    print(f"{items} items through {queue} in {took:.1f} s")
    assert exact(done) == (JobStatus.COMPLETED, items, items, 0)


async def test_a_worker_cut_off_mid_job_leaves_the_other_to_finish_exactly(
    deployment: Deployment, temporal: Client
) -> None:
    api, cut_off, other = await deployment.start_api_and_workers()
    partition, job_id = unique("p"), unique("cut")
    items = 200_000

    async with AsyncJobServiceClient(api, partition=partition) as jobs:
        # Given a job under way on both workers
        await start_sleeping_job(jobs, job_id, items)
        handled_before = await items_handled(cut_off.host)
        assert handled_before > 0

        # When one worker's host drops off the network
        cut_off.host.cut()
        at_cut = (await jobs.get_job(job_id)).counts
        try:
            done = await finished(jobs, job_id, within=300)
        finally:
            cut_off.host.heal()

        # Then the other finished it, the cut-off worker's chunks retried once their
        # heartbeats stopped
        retried = await heartbeat_retries(temporal, partition, job_id)
        print(f"cut at {at_cut}, {cut_off.host.name} having handled {handled_before}")
        print(f"{other.host.name} handled {await items_handled(other.host)}; {retried=}")
        assert at_cut.done < items and at_cut.in_flight > 0
        assert exact(done) == (JobStatus.COMPLETED, items, items, 0)
        assert retried > 0

        # And once its host is back, nothing the worker still reports is counted again
        await deployment.ready(cut_off)
        await asyncio.sleep(HEARTBEAT_TIMEOUT_SECONDS * 2)
        assert exact(await jobs.get_job(job_id)) == exact(done)

        # and it takes work again: alone now, it runs the next job
        handled_after = await items_handled(cut_off.host)
        print(f"{cut_off.host.name} handled {handled_after} by the time it was back")
        await asyncio.to_thread(other.stop)
        await jobs.create_job(job_id + "-next", job("range", "0-20000", "local:noop"))
        alone = await finished(jobs, job_id + "-next", within=120)
        assert exact(alone) == (JobStatus.COMPLETED, 20_000, 20_000, 0)
        assert await items_handled(cut_off.host) >= handled_after + 20_000


async def test_a_worker_stopped_mid_job_exits_within_its_grace_and_the_other_finishes(
    deployment: Deployment, temporal: Client
) -> None:
    api, stopped, other = await deployment.start_api_and_workers()
    partition, job_id = unique("p"), unique("sigterm")
    items = 200_000

    async with AsyncJobServiceClient(api, partition=partition) as jobs:
        # Given a job under way on both workers
        await start_sleeping_job(jobs, job_id, items)
        assert await items_handled(stopped.host) > 0

        # When one of them is told to stop
        stopped.process.send_signal(signal.SIGTERM)
        told = time.monotonic()
        at_stop = (await jobs.get_job(job_id)).counts
        code = await asyncio.to_thread(stopped.process.wait, GRACE_SECONDS * 3)
        exited = time.monotonic() - told

        # Then it drains and leaves within its grace, and the other finishes the job
        print(f"SIGTERM at {at_stop}: exited {code} after {exited:.2f} s")
        assert code == 0, stopped.tail()
        assert exited < GRACE_SECONDS
        assert at_stop.done < items and at_stop.in_flight > 0
        done = await finished(jobs, job_id, within=300)
        assert exact(done) == (JobStatus.COMPLETED, items, items, 0)
        print(f"{other.host.name} handled {await items_handled(other.host)}")
        # and it handed its chunks back: none waited out a heartbeat timeout, as they would
        # have after a worker that died
        assert await heartbeat_retries(temporal, partition, job_id) == 0
