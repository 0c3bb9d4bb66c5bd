"""What every task of a batch is started with: the job's fairness key, and how an activity
is retried."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import JobContext
    from jobservice.temporal.fairness import job_priority
    from jobservice.workflows.failures import NON_RETRYABLE


def task_priority(context: JobContext, priority: int) -> Priority:
    """Every task of the job is under the job's ``priority`` and fairness key, so that
    matching serves an urgent job first and each running job of a priority in turn: a small
    job does not wait behind a huge one's queued chunks. Set on each task rather than only
    inherited from the root, so that the tree of a root started without it (by hand, from the
    Temporal CLI) has it all the same, and a tuned priority reaches the tasks scheduled next."""
    return job_priority(context.partition, context.job_id, priority)


def retry_policy(context: JobContext) -> RetryPolicy:
    """Activities are retried with backoff up to the engine's attempts, unless the plugin
    refused the definition."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=context.engine.max_attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )
