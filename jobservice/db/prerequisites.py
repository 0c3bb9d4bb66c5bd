"""Prerequisite jobs: where a waiting job's prerequisites stand, and why it can never run.

A job waits (Waiting) until every prerequisite is Completed. A prerequisite that Failed or
was Cancelled fails its dependents, and their failure names the root job, however long the
chain. A prerequisite that does not exist (yet) is waited for: it may be created later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from jobservice.db.tables import JobRow
from jobservice.execution.job import PrerequisiteQuery, PrerequisiteState
from jobservice.jobs.job import Failure
from jobservice.jobs.status import JobStatus
from jobservice.jobs.taskids import job_task_id

NEVER_COMPLETED = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
"""Prerequisites in these states fail the jobs that wait for them."""
PREREQUISITE_SOURCE = "prerequisite job "
"""The start of a failure's source when a job failed because a prerequisite did."""


def settle(
    query: PrerequisiteQuery, rows: Mapping[str, JobRow], now: datetime
) -> PrerequisiteState:
    """Where ``query``'s prerequisites stand, given the rows of those that exist."""
    state = PrerequisiteState()
    for prerequisite in dict.fromkeys(query.prerequisite_job_ids):
        row = rows.get(prerequisite)
        if row is None:
            state.waiting_for.append(prerequisite)
            state.missing.append(prerequisite)
            continue
        status = JobStatus(row.status)
        if status in NEVER_COMPLETED:
            state.failure = _failure(query, row, now)
            return state
        if status is not JobStatus.COMPLETED:
            state.waiting_for.append(prerequisite)
    return state


def never_runs(rows: Iterable[JobRow]) -> str | None:
    """Why a new job waiting for ``rows`` could never run, if it could not."""
    for row in rows:
        if row.status in NEVER_COMPLETED:
            return (
                f"prerequisite job {row.job_id!r} is {row.status}, so a job that waits for it "
                "could never run"
            )
    return None


def _failure(query: PrerequisiteQuery, prerequisite: JobRow, now: datetime) -> Failure:
    """The dependent's failure: it names the root job, whether that is ``prerequisite`` or a
    job that failed further up the chain."""
    first = Failure.model_validate(prerequisite.failures[0]) if prerequisite.failures else None
    if first is not None and first.failure_source.startswith(PREREQUISITE_SOURCE):
        # The prerequisite failed for its own prerequisite: pass the root on.
        message = f"{first.failure_message} (through prerequisite job {prerequisite.job_id!r})"
        source = first.failure_source
    else:
        status = JobStatus(prerequisite.status)
        what = "was cancelled" if status is JobStatus.CANCELLED else "failed"
        message = f"prerequisite job {prerequisite.job_id!r} {what}"
        if first is not None:
            message += f": {first.failure_message}"
        source = PREREQUISITE_SOURCE + prerequisite.job_id
    return Failure(
        failure_id=job_task_id(query.partition_id, query.job_id),
        failure_time=now,
        failure_source=source,
        failure_message=message,
    )
