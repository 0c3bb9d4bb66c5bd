"""The activity a job's root runs to pass a pause or a cancel to every batch of its tree at once."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from jobservice.execution.names import TELL_TREE
from jobservice.execution.tree import TreeWord
from jobservice.temporal.tree import tell_batches


class TreeActivities:
    """Tells a job's running batches; injected with a Temporal client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=TELL_TREE)
    async def tell_tree(self, request: TreeWord) -> int:
        """Pause or cancel every running batch of the job; how many were told."""
        return await tell_batches(self._client, request.partition_id, request.job_id, request.word)
