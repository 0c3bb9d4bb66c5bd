"""A job's batch tree as Temporal sees it: which of its workflows run, and word for all of them.

A pause or a cancel goes down the tree a level at a time, each batch telling its children; on
a busy worker each level takes a while, and meanwhile deeper batches start more work. So the
service, and the job's root when the word reaches it some other way (the Temporal CLI, the
Web UI), also tell every running batch at once.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jobservice.execution.names import PAUSE_SIGNAL
from jobservice.execution.tree import Word
from jobservice.jobs.taskids import workflow_id

_log = logging.getLogger(__name__)


async def running(client: Client, partition: str, job_id: str, *, batches_only: bool) -> set[str]:
    """The ids of the job's running workflows (the root too unless ``batches_only``), as
    Temporal's visibility store lists them."""
    root = workflow_id(partition, job_id)
    if "'" in root or "\\" in root:
        return set()  # not to be quoted in a query; word goes down the tree from the root
    query = f"WorkflowId STARTS_WITH '{root}/'"
    if not batches_only:
        query = f"(WorkflowId = '{root}' OR {query})"
    return {
        execution.id
        async for execution in client.list_workflows(f"{query} AND ExecutionStatus = 'Running'")
    }


async def tell_batches(client: Client, partition: str, job_id: str, word: Word) -> int:
    """Pause or cancel every running batch of the job at once; how many were told. A batch
    that has closed meanwhile, or one started after the listing, needs no word: its parent
    passes it on."""

    async def one(batch_id: str) -> bool:
        handle = client.get_workflow_handle(batch_id)
        try:
            if word is Word.PAUSE:
                await handle.signal(PAUSE_SIGNAL)
            else:
                await handle.cancel()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                _log.info("batch %s not told to %s directly: %s", batch_id, word, exc.message)
            return False
        return True

    batches = await running(client, partition, job_id, batches_only=True)
    return sum(await asyncio.gather(*(one(batch_id) for batch_id in batches)))
