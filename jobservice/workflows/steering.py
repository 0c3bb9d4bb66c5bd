"""A job's steering as its workflow changes it (the ``tune`` Update), keeps it in the job's
row, and enforces its failure tolerance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import JobContext, Progress
    from jobservice.execution.job import SteerRecord
    from jobservice.execution.names import STEER_JOB
    from jobservice.jobs.job import Failure
    from jobservice.jobs.steering import Steering, SteeringPatch
    from jobservice.jobs.tolerance import FailureTolerance
    from jobservice.workflows.database import database


def changed(
    steering: Steering,
    patch: Any,
    context: JobContext,
    progress: Progress | None,
    refused: type[Exception],
) -> Steering:
    """The steering ``patch`` makes of ``steering``, or ``refused`` saying why it cannot be.
    A new tolerance is held against what the job has failed (``progress``), unless that is
    None: a redrive is judged by its tolerance once it has ended."""
    try:
        new = tuned(steering, patch, context)
    except ValueError as exc:
        raise refused(str(exc)) from None
    if progress is not None and new.failure_tolerance != steering.failure_tolerance:
        reason = refusal(new, progress)
        if reason is not None:
            raise refused(reason)
    return new


def tuned(steering: Steering, patch: Any, context: JobContext) -> Steering:
    """``steering`` with ``patch`` (a JSON merge patch of it) applied; a ValueError that says
    what is wrong with the patch. A window put back to its default is the service's."""
    new = SteeringPatch.parse(patch).applied_to(steering)
    if new.in_flight_window is None:
        new = new.model_copy(update={"in_flight_window": context.engine.in_flight_window})
    return new


def refusal(steering: Steering, progress: Progress) -> str | None:
    """Why a job with ``progress`` cannot take ``steering``: a tolerance it has exceeded."""
    tolerance = steering.failure_tolerance
    if exceeded(tolerance, progress):
        return (
            f"failureTolerance {tolerance} is below what the job has failed already: "
            f"{progress.failed} of {progress.total} items"
        )
    return None


def exceeded(tolerance: FailureTolerance, progress: Progress) -> bool:
    """Whether ``progress`` has more failed items than ``tolerance`` allows. A percentage is
    judged once the job's total is known."""
    if progress.failed == 0:
        return False
    if tolerance.percent is not None and not progress.splitting_complete:
        return False
    return tolerance.exceeded(progress.failed, progress.total)


def tolerance_failure(
    steering: Steering, progress: Progress, context: JobContext, now: datetime
) -> Failure | None:
    """The job's failure when ``progress`` exceeds its tolerance; None while it does not."""
    tolerance = steering.failure_tolerance
    if not exceeded(tolerance, progress):
        return None
    return Failure(
        failure_id=context.task_id([]),
        failure_time=now,
        failure_source="job",
        failure_message=(
            f"{progress.failed} of {progress.total} items failed, more than the "
            f"failure tolerance ({tolerance}) allows"
        ),
    )


async def keep(context: JobContext, steering: Steering, *, free_pace: bool = True) -> None:
    """Write ``steering`` to the job's row; with ``free_pace``, give up the slots its pace
    gave out: its batches take them again from now, after this, as they hear of it."""
    record = SteerRecord(
        partition_id=context.partition,
        job_id=context.job_id,
        steering=steering,
        free_pace=free_pace,
    )
    await database(STEER_JOB, record, bool)
