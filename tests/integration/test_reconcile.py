"""The row and the workflow never disagree for long: what a crash between them leaves, the
reconciler repairs, and a workflow whose row is missing makes it."""

from __future__ import annotations

import asyncio
import logging

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.db.store import JobStore
from jobservice.execution.batch import JobContext
from jobservice.execution.job import JobInput, NewJobRow
from jobservice.execution.names import JOB_WORKFLOW
from jobservice.jobs.definition import NewJob
from jobservice.jobs.jobtypes import JobTypes
from jobservice.jobs.status import JobStatus
from jobservice.jobs.taskids import workflow_id
from jobservice.plugins.registry import Registry
from jobservice.service.job_service import JobService
from jobservice.service.validation import JobValidator
from jobservice.settings import DatabaseSettings, Settings
from tests.conftest import unique
from tests.integration.support import eventually, job


@pytest.fixture
def service(
    client: Client, settings: Settings, registry: Registry, job_store: JobStore
) -> JobService:
    """A service whose reconciler looks at rows of any age."""
    database = DatabaseSettings(url=settings.database.url, reconcile_grace_seconds=0)
    quick = settings.model_copy(update={"database": database})
    return JobService(client, store=job_store, settings=quick, registry=registry)


def accepted_row(partition: str, job_id: str, batch_type: str = "range") -> NewJobRow:
    """The row a submit writes before it starts the workflow."""
    new_job = NewJob.from_definition(job(batch_type, "0-50"))
    return NewJobRow(
        partition_id=partition,
        job_id=job_id,
        definition=new_job.model_dump(mode="json", by_alias=True),
        definition_hash=new_job.definition_hash(),
    )


async def test_rows_left_without_a_workflow_are_started(
    service: JobService, job_store: JobStore, worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    # Given rows written by submits that crashed before starting their workflows, one of
    # them of a batch type this process does not have
    partition = unique("p")
    orphans = [f"orphan-{n}" for n in range(3)]
    for job_id in orphans:
        job_store.create(accepted_row(partition, job_id))
    job_store.create(accepted_row(partition, "alien", batch_type="not-installed"))

    # When the reconciler runs, a page of one row at a time
    with caplog.at_level(logging.WARNING, logger="jobservice.service.reconciler"):
        repaired = await service.reconcile(page=1)

    # Then every job it can run runs, and the one it cannot is named and left for another
    assert repaired >= 3
    for job_id in orphans:
        done = await asyncio.wait_for(service.wait(job_id, partition=partition, interval=0.2), 60)
        assert (done.status, done.counts.completed) == (JobStatus.COMPLETED, 50)
    assert f"job {partition}/alien" in caplog.text
    assert (await service.get("alien", partition=partition)).status is JobStatus.WAITING


async def test_a_row_whose_workflow_was_ended_outside_is_closed(
    service: JobService, client: Client, worker: Worker
) -> None:
    # Given a job that waits forever, whose workflow someone terminates in Temporal's UI
    partition = unique("p")
    waiting = job("range", "0-5").model_copy(update={"prerequisite_job_ids": ["never"]})
    await service.submit("stuck", waiting, partition=partition)

    async def waits_for_never() -> bool:
        # The workflow has written its row: no write of its is in flight when it is ended
        view = await service.get("stuck", partition=partition)
        return "waiting for prerequisite jobs never" in (view.status_reason or "")

    await eventually(waits_for_never, within=30)
    await client.get_workflow_handle(workflow_id(partition, "stuck")).terminate("by hand")

    # When the reconciler runs, the row follows the workflow
    assert await service.reconcile() >= 1
    assert (await service.get("stuck", partition=partition)).status is JobStatus.CANCELLED


async def test_a_workflow_without_its_row_makes_it(
    service: JobService, client: Client, settings: Settings, registry: Registry, worker: Worker
) -> None:
    # Given a job's workflow started with no row behind it (a database restored from before)
    partition = unique("p")
    new_row = accepted_row(partition, "rowless")
    validator = JobValidator(registry, JobTypes.load(settings.job_types_dir), settings.engine)
    definition = validator.execution_of(
        NewJob.model_validate(new_row.definition), partition=partition, job_id="rowless"
    )
    context = JobContext(
        partition=partition,
        job_id="rowless",
        batch_type=definition.batch_type,
        target_pipe=definition.target_pipe,
        engine=settings.engine,
    )
    await client.start_workflow(
        JOB_WORKFLOW,
        JobInput(context=context, definition=definition.batch_definition, new_row=new_row),
        id=workflow_id(partition, "rowless"),
        task_queue=settings.temporal.task_queue,
    )

    # Then the workflow makes the row, and keeps it current to the end
    async def row_made() -> bool:
        return service.store.get(partition_id=partition, job_id="rowless") is not None

    await eventually(row_made, within=30)
    done = await asyncio.wait_for(service.wait("rowless", partition=partition, interval=0.2), 60)
    assert (done.status, done.counts.completed) == (JobStatus.COMPLETED, 50)
