"""Submitting: refusals before anything starts, and the same job id twice."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.errors import InvalidJobError, JobConflictError, JobNotFoundError
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from tests.conftest import unique
from tests.integration.support import job, workflow_runs


async def test_an_unknown_batch_type_is_refused_before_anything_starts(
    service: JobService, client: Client
) -> None:
    job_id = unique("unknown")

    with pytest.raises(InvalidJobError, match=r"unknown batch type 'ranges'; known: .*range"):
        await service.submit(job_id, job("ranges", "0-10"))

    assert await workflow_runs(client, "default", job_id) == []
    with pytest.raises(JobNotFoundError):
        await service.get(job_id)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_pipe": "local:nothing"}, "unknown item handler 'nothing'"),
        ({"task_message_type": "fancy"}, "unknown task message type 'fancy'"),
        ({"target_pipe": " padded-queue"}, "is not a RabbitMQ queue name"),
        ({"target_pipe": "tab\tqueue"}, "no control characters"),
        ({"target_pipe": "q" * 256}, "at most 255 bytes"),
    ],
)
async def test_unknown_builders_handlers_and_pipes_are_refused(
    service: JobService, changes: dict[str, str], message: str
) -> None:
    definition = job("range", "0-10").model_copy(update=changes)

    with pytest.raises(InvalidJobError, match=message):
        await service.submit(unique("refused"), definition)


@pytest.mark.parametrize("job_id", ["a.b", "x:y", " has a space first", "q?", "a/b", "j" * 49, ""])
async def test_job_ids_that_would_break_task_ids_are_refused(
    service: JobService, job_id: str
) -> None:
    with pytest.raises(InvalidJobError, match="job id"):
        await service.submit(job_id, job("range", "0-10"))


async def test_the_same_job_submitted_twice_starts_once(
    service: JobService, worker: Worker, client: Client
) -> None:
    job_id = unique("twice")
    definition = job("range", "0-500", "local:noop", name="twice", labels={"team": "a"})

    first = await service.submit(job_id, definition)
    second = await service.submit(job_id, definition)

    assert (first.created, second.created) == (True, False)
    done = await service.wait(job_id, interval=0.2)
    assert done.status is JobStatus.COMPLETED
    assert (done.name, done.labels) == ("twice", {"team": "a"})
    # once it has finished, the same submission is still no error and starts nothing
    assert (await service.submit(job_id, definition)).created is False
    assert len(await workflow_runs(client, "default", job_id)) == 1
    with pytest.raises(JobConflictError, match="different definition"):
        await service.submit(job_id, job("range", "0-501", "local:noop", name="twice"))


async def test_jobs_are_listed_by_partition_and_status(service: JobService, worker: Worker) -> None:
    partition = unique("part")
    for n in range(3):
        await service.submit(f"j{n}", job("range", "0-100", "local:noop"), partition=partition)
        await service.wait(f"j{n}", partition=partition, interval=0.2)

    listed = await service.list(partition=partition)
    completed = await service.list(partition=partition, status=JobStatus.COMPLETED)
    active = await service.list(partition=partition, status=JobStatus.ACTIVE)

    assert sorted(j.id for j in listed) == ["j0", "j1", "j2"]
    assert [j.id for j in completed] == [j.id for j in listed]
    assert {j.partition for j in listed} == {partition}
    assert active == []
