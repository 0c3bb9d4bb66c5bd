"""The job database as a workflow reaches it: local activities, retried until it answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from jobservice.workflows.failures import DATABASE_RETRY, raise_if_cancelled

T = TypeVar("T")


async def database(activity: str, argument: Any, result_type: type[T]) -> T:
    """A job database activity, run locally. The database may be away for a while: it is
    retried until it answers. The job being cancelled meanwhile is a cancel."""
    try:
        result: T = await workflow.execute_local_activity(
            activity,
            argument,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DATABASE_RETRY,
        )
    except ActivityError as error:
        raise_if_cancelled(error)
        raise
    return result
