"""A job's batch tree a level and a page at a time, as a dashboard browses it.

The tree: 30,000 items in leaves of 1,000, so 10 batches of 3,000 below the root and 3 leaves
below each; with a batch window of 3, the root runs 3 children and each of them its 3 leaves.
A leaf's items go out in 4 chunks of 250, and each item sleeps 10 ms: the leaves are half-way
when the job is paused to freeze the tree.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.worker import Worker

from jobservice.errors import InvalidRequestError, JobNotFoundError, UnavailableError
from jobservice.execution.batch import BatchPage
from jobservice.jobs.status import JobStatus
from jobservice.jobs.taskids import workflow_id
from jobservice.service.job_service import JobService
from tests.conftest import unique
from tests.integration.support import eventually, job, run_to_end

TREE = "0-30000/1000"
ITEMS = 30_000
SLOW = {"sleepMillis": "10"}
WINDOW = 3
"""The batch window of the tests' engine settings (tests/conftest.py)."""


async def page_of(
    service: JobService,
    job_id: str,
    partition: str,
    path: list[int] | None = None,
    *,
    offset: int = 0,
    limit: int = 50,
) -> BatchPage:
    page = await service.batches(
        job_id, partition=partition, path=path or [], offset=offset, limit=limit
    )
    assert page is not None, f"batch {path or []} of {job_id} is not running"
    return page


async def frozen_tree(service: JobService, partition: str) -> str:
    """A job of the tree, under way with every child of the root reporting, then paused; its
    id once its row has stopped moving."""
    job_id = unique("tree")
    await service.submit(
        job_id, job("range", TREE, "local:sleep", task_message_params=SLOW), partition=partition
    )

    async def under_way() -> bool:
        page = await service.batches(job_id, partition=partition)
        return (
            page is not None
            and page.running_total == WINDOW
            and all(child.progress is not None for child in page.running)
            and page.progress.completed > 0
        )

    await eventually(under_way, within=60, interval=0.2)
    await service.pause(job_id, partition=partition)

    async def still() -> bool:
        before = await page_of(service, job_id, partition)
        await asyncio.sleep(1)
        after = await page_of(service, job_id, partition)
        row = await service.get(job_id, partition=partition)
        return (
            before.progress == after.progress
            and before.running == after.running
            and row.counts.completed == after.progress.completed
        )

    await eventually(still, within=30, interval=0.1)
    return job_id


async def test_the_root_page_lists_its_running_children_with_their_progress(
    service: JobService, worker: Worker, partition: str
) -> None:
    job_id = await frozen_tree(service, partition)

    root = await page_of(service, job_id, partition)

    assert root.paused
    assert root.running_total == WINDOW
    indexes = [child.index for child in root.running]
    assert indexes == sorted(indexes) and len(indexes) == WINDOW
    assert [child.workflow_id for child in root.running] == [
        workflow_id(partition, job_id, [index]) for index in indexes
    ]
    assert all(child.paused for child in root.running)
    assert all(child.estimate == 3000 for child in root.running)
    # Every sub-batch was fetched at once: each is running, ended or waiting to start.
    assert root.sub_batch_total == 10 and not root.more_pending
    assert root.finished_children + root.running_total + root.pending == 10
    assert root.chunks == 0 and root.chunk_items == 0  # the root has no items of its own
    # The root's counts are what its children reported, and those of the ones that ended.
    assert root.progress.total == ITEMS
    children = [child.progress for child in root.running if child.progress is not None]
    assert len(children) == WINDOW
    assert 0 < sum(c.completed for c in children) <= root.progress.completed
    assert sum(c.total for c in children) <= root.progress.total
    assert root.progress.failures == []
    row = await service.get(job_id, partition=partition)
    assert row.status is JobStatus.PAUSED
    assert row.counts.completed == root.progress.completed
    assert row.counts.total == root.progress.total


async def test_pages_of_running_children_are_disjoint_slices(
    service: JobService, worker: Worker, partition: str
) -> None:
    job_id = await frozen_tree(service, partition)

    whole = await page_of(service, job_id, partition, limit=50)
    first = await page_of(service, job_id, partition, offset=0, limit=2)
    rest = await page_of(service, job_id, partition, offset=2, limit=2)
    beyond = await page_of(service, job_id, partition, offset=WINDOW, limit=2)

    assert [c.index for c in first.running] == [c.index for c in whole.running][:2]
    assert [c.index for c in rest.running] == [c.index for c in whole.running][2:]
    assert not {c.index for c in first.running} & {c.index for c in rest.running}
    assert beyond.running == []
    assert first.running_total == rest.running_total == beyond.running_total == WINDOW


async def test_a_child_page_answers_for_its_own_level(
    service: JobService, worker: Worker, partition: str
) -> None:
    job_id = await frozen_tree(service, partition)
    root = await page_of(service, job_id, partition)
    child = root.running[0]

    page = await page_of(service, job_id, partition, [child.index])

    assert page.paused
    assert page.sub_batch_total == 3
    assert page.finished_children + page.running_total + page.pending == 3
    assert page.running_total == len(page.running) > 0
    assert [leaf.workflow_id for leaf in page.running] == [
        workflow_id(partition, job_id, [child.index, leaf.index]) for leaf in page.running
    ]
    # The child's own counts, and what it last reported to the root: the same, frozen.
    assert child.progress is not None
    assert page.progress.completed == child.progress.completed
    assert page.progress.total == child.progress.total == 3000
    leaves = [leaf.progress for leaf in page.running if leaf.progress is not None]
    assert sum(leaf.completed for leaf in leaves) <= page.progress.completed
    leaf = await page_of(service, job_id, partition, [child.index, page.running[0].index])
    assert leaf.sub_batch_total == 0 and leaf.running_total == 0 and leaf.running == []
    assert leaf.progress.total == 1000


async def test_a_page_counts_the_chunks_of_its_own_items_out(
    service: JobService, worker: Worker, partition: str
) -> None:
    # Given a job of one batch of 1,000 items: 4 chunks of 250, 2 of them out at a time
    job_id = unique("chunks")
    await service.submit(
        job_id, job("range", "0-1000", "local:sleep", task_message_params=SLOW), partition=partition
    )
    page: BatchPage | None = None

    async def two_out() -> bool:
        nonlocal page
        page = await service.batches(job_id, partition=partition)
        return page is not None and page.chunks == 2

    await eventually(two_out, within=30, interval=0.1)

    assert page is not None
    assert page.chunk_items == 500
    # In flight are items published to a queue and not yet settled: a local job has none;
    # its handler's items in hand are its worker's to say, in the job's view
    assert page.progress.in_flight == 0
    assert page.sub_batch_total == 0 and not page.more_pending and page.running_total == 0
    await service.cancel(job_id, partition=partition)


async def test_a_batch_that_is_not_running_answers_none(
    service: JobService, worker: Worker, partition: str
) -> None:
    # A batch index past the root's sub-batches never runs; nor does a finished job's root.
    job_id = unique("done")
    await service.submit(job_id, job("range", "0-10"), partition=partition)
    assert await service.batches(job_id, partition=partition, path=[99]) is None
    finished = await run_to_end(service, unique("done"), job("range", "0-500/100"))
    assert finished.status is JobStatus.COMPLETED

    assert await service.batches(finished.id) is None
    assert await service.batches(finished.id, path=[1]) is None


async def test_a_page_without_a_worker_is_unavailable_in_moments(
    service: JobService, partition: str
) -> None:
    # Given a job whose workflow runs, with no worker polling its task queue
    job_id = unique("unserved")
    await service.submit(job_id, job("range", "0-10"), partition=partition)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(UnavailableError, match="no worker answered"):
        await service.batches(job_id, partition=partition)

    assert loop.time() - started < 10
    await service.cancel(job_id, partition=partition, settle=False)


@pytest.mark.parametrize(
    ("offset", "limit"),
    [(0, 0), (0, 501), (-1, 50)],
    ids=["no-limit", "limit-too-large", "negative-offset"],
)
async def test_a_wrong_page_is_refused(service: JobService, offset: int, limit: int) -> None:
    with pytest.raises(InvalidRequestError, match=r"offset|limit"):
        await service.batches(unique("any"), offset=offset, limit=limit)


async def test_an_unknown_job_or_a_wrong_path_is_refused(service: JobService) -> None:
    with pytest.raises(JobNotFoundError):
        await service.batches(unique("missing"))
    with pytest.raises(InvalidRequestError):
        await service.batches(unique("any"), path=[0])
