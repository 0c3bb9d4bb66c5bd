"""A job's workflow tells every running batch of its tree at once of a pause or a cancel, not
only down the tree a level at a time: the word may have come from the Temporal CLI or Web UI,
not from the service, which tells them itself."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import JobContext
    from jobservice.execution.names import TELL_TREE
    from jobservice.execution.tree import TreeWord, Word


async def tell_tree(context: JobContext, word: Word) -> None:
    """Tell the job's running batches ``word``; a failure to is logged, not raised: the word
    still goes down the tree."""
    try:
        await workflow.execute_local_activity(
            TELL_TREE,
            TreeWord(partition_id=context.partition, job_id=context.job_id, word=word),
            result_type=int,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
    except ActivityError as error:
        workflow.logger.warning("could not %s the batches at once: %s", word, error)
