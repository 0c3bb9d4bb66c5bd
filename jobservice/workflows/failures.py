"""How a batch's failure is told: from the details an activity or child reported, to the
details a failed workflow reports in turn."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from jobservice.jobs.job import Failure

NON_RETRYABLE = ["BatchDefinitionError", "InvalidJobError"]
"""Errors of an activity that no retry can mend: the plugin refused the definition."""
DATABASE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
"""A job database activity is tried until the database answers: it may be away a while."""


def raise_if_cancelled(error: ActivityError) -> None:
    """An activity cancelled with its workflow is the workflow's cancel, not a failure: it
    goes on as CancelledError."""
    if is_cancelled_exception(error):
        raise asyncio.CancelledError from error


class BatchFailedError(Exception):
    """The batch cannot finish: a plugin refused its definition, or a child batch failed."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.failure_message)
        self.failure = failure


def failure_from_error(error: BaseException, failure_id: str, source: str) -> Failure:
    """The failure an activity or child reported in its details, else one made from its message."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.details:
            try:
                return Failure.model_validate(cause.details[0])
            except ValueError:
                pass
        cause = cause.__cause__ or getattr(cause, "cause", None)
    message = error.message if isinstance(error, FailureError) else str(error)
    cause = error.__cause__
    while cause is not None:  # the innermost message says what went wrong
        if isinstance(cause, FailureError) and cause.message:
            message = cause.message
        cause = cause.__cause__
    return Failure(
        failure_id=failure_id,
        failure_time=workflow.now(),
        failure_source=source,
        failure_message=message,
    )


def failure_details(failure: Failure) -> dict[str, Any]:
    return failure.model_dump(mode="json", by_alias=True)
