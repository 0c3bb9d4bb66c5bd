"""Plugin errors fail the job with details; item failures fail it per its failure tolerance."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.worker import Worker

from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings
from tests.conftest import unique
from tests.integration.support import job, run_to_end


async def test_a_bad_definition_fails_the_job_with_failure_details(
    service: JobService, worker: Worker
) -> None:
    # Given a plugin with no check at submit, whose batch refuses its definition in the worker
    job_id = unique("bad")

    done = await run_to_end(service, job_id, job("two-halves", "half:bad", "local:noop"))

    assert done.status is JobStatus.FAILED
    [failure] = done.failures
    assert failure.failure_id == f"default:{job_id}"
    assert failure.failure_source == "batch plugin 'two-halves'"
    assert failure.failure_message == "this half cannot be read"
    assert failure.failure_time is not None


async def test_a_file_gone_by_the_time_the_job_runs_fails_the_job(
    service: JobService, worker: Worker, file_root: Path
) -> None:
    # Given a file there when the job is submitted, and gone before its delay is over
    (file_root / "items.jsonl").write_text("1\n2\n")
    job_id = unique("nofile")
    await service.submit(job_id, job("jsonl", "items.jsonl", "local:noop", delay=1))
    (file_root / "items.jsonl").unlink()

    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)

    assert done.status is JobStatus.FAILED
    assert "does not exist" in done.failures[0].failure_message


async def test_a_bad_sub_batch_fails_the_job_naming_the_sub_batch(
    service: JobService, worker: Worker
) -> None:
    # Given a batch whose first half is fine and whose second half its plugin refuses
    job_id = unique("badsub")

    done = await run_to_end(service, job_id, job("two-halves", "10"))

    assert done.status is JobStatus.FAILED
    failure = done.failures[0]
    assert failure.failure_id == f"default:{job_id}.2"
    assert failure.failure_source == "batch plugin 'two-halves'"
    assert failure.failure_message == "this half cannot be read"


async def test_a_transient_plugin_error_is_retried_and_the_job_completes(
    service: JobService, worker: Worker
) -> None:
    # Given a source that fails twice before it answers
    done = await run_to_end(service, unique("flaky"), job("flaky", "300:2", "local:noop"))

    assert done.status is JobStatus.COMPLETED
    assert done.counts.completed == 300


async def test_a_lasting_transient_error_fails_the_job_after_its_attempts(
    service: JobService, worker: Worker, engine: EngineSettings
) -> None:
    done = await run_to_end(service, unique("flaky"), job("flaky", "300:always", "local:noop"))

    assert done.status is JobStatus.FAILED
    assert done.failures[0].failure_source == "batch plugin 'flaky'"
    assert f"attempt {engine.max_attempts})" in done.failures[0].failure_message


@pytest.mark.parametrize(
    ("tolerance", "status"),
    [
        (None, JobStatus.FAILED),
        ("49", JobStatus.FAILED),
        ("50", JobStatus.COMPLETED),
        ("50%", JobStatus.COMPLETED),
        ("10%", JobStatus.FAILED),
    ],
)
async def test_failing_items_fail_the_job_unless_tolerated(
    service: JobService,
    worker: Worker,
    engine: EngineSettings,
    tolerance: str | None,
    status: JobStatus,
) -> None:
    # Given 100 items of which the 50 odd ones fail
    job_id = unique("tolerance")

    done = await run_to_end(
        service, job_id, job("range", "0-100/30", "local:fail-odd", failure_tolerance=tolerance)
    )

    assert done.status is status
    if status is JobStatus.COMPLETED:
        assert (done.counts.completed, done.counts.failed) == (50, 50)
    else:
        assert done.counts.failed >= 1
        assert done.failures[0].failure_source == "job"
        assert "more than the failure tolerance" in done.failures[0].failure_message
    item_failures = [f for f in done.failures if f.failure_source == "item handler local:fail-odd"]
    assert item_failures, "the failed items' details are kept"
    assert all("is odd" in f.failure_message for f in item_failures)
    assert len(done.failures) <= engine.failure_details
