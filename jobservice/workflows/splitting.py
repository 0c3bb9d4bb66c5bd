"""A page of a batch's sub-batches, and its totals, from its plugin: the ``split_batch``
activity, and what its failure means for the batch."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import BatchInput, BatchState, SplitInput, SplitResult
    from jobservice.execution.names import SPLIT_BATCH
    from jobservice.workflows.failures import (
        BatchFailedError,
        failure_from_error,
        raise_if_cancelled,
    )


async def fetch_sub_batches(
    request: BatchInput, state: BatchState, *, retry_policy: RetryPolicy, priority: Priority
) -> None:
    """Fetch the batch's next page of sub-batches into ``state``: its pending ones, and on
    the first page the batch's totals (its split)."""
    result = await split_page(
        request, state.sub_batches_fetched, retry_policy=retry_policy, priority=priority
    )
    if state.split is None:
        state.split = result.model_copy(update={"sub_batches": []})
    state.pending.extend(result.sub_batches)
    state.sub_batches_fetched += len(result.sub_batches)
    if not result.sub_batches:  # the batch shrank since it was counted
        state.sub_batches_fetched = state.split.sub_batch_total


async def split_page(
    request: BatchInput, offset: int, *, retry_policy: RetryPolicy, priority: Priority
) -> SplitResult:
    """The batch's sub-batches from ``offset``, a page of them. The batch being cancelled
    meanwhile raises CancelledError; the plugin failing for good, BatchFailedError."""
    context = request.context
    try:
        result: SplitResult = await workflow.execute_activity(
            SPLIT_BATCH,
            SplitInput(
                context=context,
                path=request.path,
                definition=request.definition,
                sub_batch_offset=offset,
                sub_batch_limit=context.engine.sub_batch_page,
            ),
            result_type=SplitResult,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=retry_policy,
            priority=priority,
        )
    except ActivityError as error:
        raise_if_cancelled(error)  # cancelled while it splits: not a failure
        raise BatchFailedError(
            failure_from_error(
                error, context.task_id(request.path), f"batch plugin {context.batch_type!r}"
            )
        ) from error
    return result
