"""A job's workflows in Temporal, as the service layer drives them.

Starts a job's root workflow, signals, cancels and ends it, and reaches the batches of its
tree. Temporal not answering is an :class:`UnavailableError`; nothing here reads or writes the
job database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    QueryRejectCondition,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from jobservice.errors import InvalidJobError, JobStateError, UnavailableError
from jobservice.execution.batch import BatchesRequest, BatchPage
from jobservice.execution.job import JobInput, PipeWord
from jobservice.execution.names import BATCHES_QUERY, JOB_WORKFLOW, PIPE_SIGNAL, TUNE_UPDATE
from jobservice.execution.tree import Word
from jobservice.jobs.status import JobStatus
from jobservice.jobs.taskids import workflow_id
from jobservice.settings import TemporalSettings
from jobservice.temporal import tree
from jobservice.temporal.fairness import job_priority
from jobservice.temporal.search import JOB_ID, JOB_PARTITION, JOB_STATUS

_SETTLE_SECONDS = 3.0
"""How long the tree may stay as it is before a cancel stops waiting for it to close."""
_CANCEL_SECONDS = 10.0
"""The longest a cancel waits for the job's batch tree to close."""
_QUERY_SECONDS = 3.0
"""The longest a page of the batch tree waits for a worker to answer a query: with none
polling, Temporal would hold the query until the call's deadline."""
_UPDATE_SECONDS = 10.0
"""The longest a change of a job's steering waits for a worker to take it."""
_NO_ANSWER = (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
"""A call's deadline passing reads as CANCELLED, the server's as DEADLINE_EXCEEDED."""


class JobWorkflows:
    """The workflows of jobs: one root workflow a job, with its tree of batches below."""

    def __init__(self, client: Client, settings: TemporalSettings) -> None:
        self._client = client
        self._settings = settings

    def _handle(self, partition: str, job_id: str) -> WorkflowHandle[Any, Any]:
        return self._client.get_workflow_handle(workflow_id(partition, job_id))

    async def start(self, first_run: JobInput, *, summary: str) -> None:
        """Start the job's root workflow; one already started changes nothing. Raises
        :class:`RPCError` when Temporal does not take it."""
        context = first_run.context
        status = JobStatus.WAITING if first_run.waits else JobStatus.ACTIVE
        # Started already, by an earlier call or the reconciler: nothing to do.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                JOB_WORKFLOW,
                first_run,
                id=workflow_id(context.partition, context.job_id),
                task_queue=self._settings.task_queue,
                # An earlier job of the same id may have been deleted; its closed run stays.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(JOB_ID, context.job_id),
                        SearchAttributePair(JOB_PARTITION, context.partition),
                        SearchAttributePair(JOB_STATUS, status.value),
                    ]
                ),
                static_summary=summary,
                priority=job_priority(
                    context.partition, context.job_id, context.submitted_steering().priority
                ),
            )

    async def execution(self, partition: str, job_id: str) -> WorkflowExecution | None:
        """The job's workflow execution as Temporal describes it; None when there is none."""
        try:
            return await self._handle(partition, job_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise unavailable(exc) from None

    async def signal(self, partition: str, job_id: str, signal: str) -> None:
        try:
            await self._handle(partition, job_id).signal(signal)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise JobStateError(
                    f"job {job_id!r} has no running workflow yet; try again shortly"
                ) from None
            raise unavailable(exc) from None

    async def tune(self, partition: str, job_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Change the job's steering by ``patch`` (a JSON merge patch), through the ``tune``
        Update of its workflow; the steering it then has. A change the workflow refuses is an
        :class:`InvalidJobError` saying why, and leaves nothing in its history."""
        try:
            steering: dict[str, Any] = await self._handle(partition, job_id).execute_update(
                TUNE_UPDATE,
                patch,
                result_type=dict,
                rpc_timeout=timedelta(seconds=_UPDATE_SECONDS),
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise InvalidJobError(reason) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise UnavailableError(
                f"the change of job {job_id!r} was not confirmed within {_UPDATE_SECONDS:g} s: "
                "no worker took it, or the job database was slow to take it; read the job "
                "to see whether it applied"
            ) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise JobStateError(
                    f"job {job_id!r} has no running workflow to tune: it has ended, or has "
                    "not started yet"
                ) from None
            if exc.status in _NO_ANSWER:
                did = f"took the change of job {job_id!r}"
                raise self._no_worker(did, _UPDATE_SECONDS) from None
            raise unavailable(exc) from None
        return steering

    async def tell_pipe(self, partition: str, job_id: str, word: PipeWord) -> bool:
        """Tell the job's workflow its target pipe's new limit, or a new deal of its shares;
        False when it has none running (one started later reads the limit as it starts)."""
        try:
            await self._handle(partition, job_id).signal(PIPE_SIGNAL, word)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise unavailable(exc) from None
            return False
        return True

    async def cancel(self, partition: str, job_id: str) -> bool:
        """Ask the job's workflow to cancel; False when it has none running."""
        try:
            await self._handle(partition, job_id).cancel()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise unavailable(exc) from None
            return False
        return True

    async def terminate(self, partition: str, job_id: str, *, reason: str) -> None:
        """End the job's workflow at once, if it runs."""
        try:
            await self._handle(partition, job_id).terminate(reason=reason)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise unavailable(exc) from None

    async def batches(
        self, partition: str, job_id: str, path: Sequence[int], request: BatchesRequest
    ) -> BatchPage | None:
        """A page of the running children of the job's batch at ``path`` (the root: none), as
        the batch's workflow answers; None when that workflow is not running. A closed one is
        not asked: a worker would replay its whole history to answer."""
        batch_id = workflow_id(partition, job_id, path)
        handle = self._client.get_workflow_handle(batch_id)
        try:
            described = await handle.describe()
            if described.status is not WorkflowExecutionStatus.RUNNING:
                return None
            page: BatchPage = await handle.query(
                BATCHES_QUERY,
                request,
                result_type=BatchPage,
                reject_condition=QueryRejectCondition.NOT_OPEN,
                rpc_timeout=timedelta(seconds=_QUERY_SECONDS),
            )
        except WorkflowQueryRejectedError:
            return None  # it closed since it was described
        except WorkflowQueryFailedError as exc:
            raise UnavailableError(f"batch {batch_id} could not answer: {exc.message}") from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            if exc.status in _NO_ANSWER:
                did = f"answered for batch {batch_id}"
                raise self._no_worker(did, _QUERY_SECONDS) from None
            raise unavailable(exc) from None
        return page

    def _no_worker(self, did: str, seconds: float) -> UnavailableError:
        return UnavailableError(
            f"no worker {did} within {seconds:g} s: is a worker polling task queue "
            f"{self._settings.task_queue!r}?"
        )

    async def tell_tree(self, partition: str, job_id: str, word: Word) -> None:
        """Tell every running batch at once, besides the root, which passes word on too."""
        try:
            await tree.tell_batches(self._client, partition, job_id, word)
        except RPCError as exc:
            raise unavailable(exc) from None

    async def tree_closed(
        self, partition: str, job_id: str, *, served: Callable[[], Awaitable[bool | None]]
    ) -> None:
        """Wait until no workflow of the job's tree runs, ten seconds at most. While none
        closes, a few seconds only, unless ``served`` says a worker polls: with none there to
        close them they stay open, but a busy worker may take a while to get to the last."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CANCEL_SECONDS
        running = await self._tree(partition, job_id)
        quiet_since = loop.time()
        while running and loop.time() < deadline:
            if loop.time() - quiet_since >= _SETTLE_SECONDS and await served() is not True:
                return
            await asyncio.sleep(0.1)
            still = await self._tree(partition, job_id)
            if len(still) < len(running):
                quiet_since = loop.time()
            running = still

    async def _tree(self, partition: str, job_id: str) -> set[str]:
        try:
            return await tree.running(self._client, partition, job_id, batches_only=False)
        except RPCError as exc:
            raise unavailable(exc) from None


def unavailable(exc: RPCError) -> UnavailableError:
    return UnavailableError(f"Temporal did not answer: {exc.message}")
