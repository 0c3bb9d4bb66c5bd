"""The service layer: the one place that submits, reads, lists, pauses, resumes and cancels jobs.

The CLI, the REST API and embedding applications all call it; none repeats its logic.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from jobservice.activities.pipes import local_handler_name
from jobservice.errors import (
    InvalidJobError,
    JobConflictError,
    JobNotFoundError,
    JobStateError,
    UnavailableError,
)
from jobservice.execution import (
    JOB_WORKFLOW,
    PAUSE_SIGNAL,
    RESUME_SIGNAL,
    JobContext,
    JobInput,
    JobProgress,
)
from jobservice.models import JobCounts, JobDefinition, JobStatus, JobView
from jobservice.registry import Registry, installed
from jobservice.settings import Settings, get_settings
from jobservice.taskids import workflow_id
from jobservice.temporal import JOB_ID, JOB_PARTITION, JOB_STATUS, connect

DEFAULT_PARTITION = "default"
MAX_DEFINITION_BYTES = 128_000
_FORBIDDEN = re.compile(r"[.,:;*?!|()/\s]")
_MEMO_DEFINITION = "definition"
_MEMO_HASH = "definitionHash"
_MEMO_OUTCOME = "outcome"
_QUERY_TIMEOUT = timedelta(seconds=5)


def _check_id(kind: str, value: str, longest: int) -> None:
    if not value:
        raise InvalidJobError(f"the {kind} is empty")
    if len(value) > longest:
        raise InvalidJobError(f"the {kind} {value!r} is longer than {longest} characters")
    if _FORBIDDEN.search(value):
        raise InvalidJobError(
            f"the {kind} {value!r} contains one of . , : ; * ? ! | ( ) / or white space"
        )


def validate_ids(partition: str, job_id: str | None = None) -> None:
    """Partition ids up to 40 characters, job ids up to 48, with none of ``.,:;*?!|()/``."""
    _check_id("partition id", partition, 40)
    if job_id is not None:
        _check_id("job id", job_id, 48)


@dataclass(frozen=True)
class Submission:
    """A submitted job, and whether this call created it (False: it was there already)."""

    job: JobView
    created: bool


class JobService:
    """Job operations over a Temporal client."""

    def __init__(
        self, client: Client, *, settings: Settings | None = None, registry: Registry | None = None
    ) -> None:
        self._client = client
        self._settings = settings or get_settings()
        self._registry = registry or installed()

    @classmethod
    async def connect(cls, settings: Settings | None = None) -> JobService:
        settings = settings or get_settings()
        return cls(await connect(settings.temporal), settings=settings)

    @property
    def client(self) -> Client:
        return self._client

    # -- submit --------------------------------------------------------------------------

    def check_definition(self, definition: JobDefinition) -> None:
        """Refuse, before anything starts, a job no worker could run."""
        self._registry.batch_plugin(definition.batch_type)
        self._registry.builder(definition.task_message_type)
        handler = local_handler_name(definition.target_pipe)
        if handler is not None:
            self._registry.handler(handler)
        elif len(definition.target_pipe.encode()) > 255 or definition.target_pipe.strip() != (
            definition.target_pipe
        ):
            raise InvalidJobError(
                f"targetPipe {definition.target_pipe!r} is not a RabbitMQ queue name "
                "(at most 255 bytes, no surrounding white space) nor local:<handler>"
            )
        size = len(definition.model_dump_json())
        if size > MAX_DEFINITION_BYTES:
            raise InvalidJobError(
                f"the job definition is {size:,} bytes; the most is {MAX_DEFINITION_BYTES:,}. "
                "Put large inputs in a file and use the jsonl or directory batch type"
            )

    async def submit(
        self, job_id: str, definition: JobDefinition, *, partition: str = DEFAULT_PARTITION
    ) -> Submission:
        """Start a job. The same id with the same definition again starts nothing new; with a
        different definition it is a :class:`JobConflictError`."""
        validate_ids(partition, job_id)
        self.check_definition(definition)
        digest = definition.definition_hash()
        context = JobContext(
            partition=partition,
            job_id=job_id,
            batch_type=definition.batch_type,
            task_message_type=definition.task_message_type,
            task_message_params=definition.task_message_params,
            target_pipe=definition.target_pipe,
            failure_tolerance=definition.failure_tolerance,
            engine=self._settings.engine,
        )
        memo: dict[str, Any] = {
            _MEMO_HASH: digest,
            _MEMO_DEFINITION: definition.model_dump(mode="json", by_alias=True),
        }
        try:
            await self._client.start_workflow(
                JOB_WORKFLOW,
                JobInput(context=context, definition=definition.batch_definition),
                id=workflow_id(partition, job_id),
                task_queue=self._settings.temporal.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(JOB_ID, job_id),
                        SearchAttributePair(JOB_PARTITION, partition),
                        SearchAttributePair(JOB_STATUS, JobStatus.ACTIVE.value),
                    ]
                ),
                memo=memo,
                static_summary=f"{definition.batch_type} job {partition}/{job_id}",
            )
            created = True
        except WorkflowAlreadyStartedError:
            existing = await self._describe(partition, job_id)
            if (await existing.memo()).get(_MEMO_HASH) != digest:
                raise JobConflictError(
                    f"job {job_id!r} in partition {partition!r} exists with a different "
                    "definition; choose another job id"
                ) from None
            created = False
        return Submission(await self.get(job_id, partition=partition), created)

    # -- read ----------------------------------------------------------------------------

    def _handle(self, partition: str, job_id: str) -> WorkflowHandle[Any, Any]:
        return self._client.get_workflow_handle(workflow_id(partition, job_id))

    async def _describe(self, partition: str, job_id: str) -> WorkflowExecution:
        validate_ids(partition, job_id)
        try:
            return await self._handle(partition, job_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise JobNotFoundError(f"no job {job_id!r} in partition {partition!r}") from None
            raise UnavailableError(f"Temporal did not answer: {exc.message}") from None

    async def get(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """The job's status, counts, rate and failures."""
        execution = await self._describe(partition, job_id)
        memo = await execution.memo()
        progress: JobProgress | None = None
        if _MEMO_OUTCOME in memo:
            progress = JobProgress.model_validate(memo[_MEMO_OUTCOME])
        elif execution.status == WorkflowExecutionStatus.RUNNING:
            progress = await self._query_progress(partition, job_id)
        return _view(execution, memo, progress)

    async def _query_progress(self, partition: str, job_id: str) -> JobProgress | None:
        try:
            result: JobProgress = await self._handle(partition, job_id).query(
                "progress", result_type=JobProgress, rpc_timeout=_QUERY_TIMEOUT
            )
            return result
        except RPCError:
            return None  # no worker answered in time; the status still comes from Temporal

    async def list(
        self,
        *,
        partition: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
    ) -> list[JobView]:
        """Jobs, newest first, from Temporal's visibility store."""
        clauses = [f"WorkflowType = '{JOB_WORKFLOW}'"]
        if partition is not None:
            validate_ids(partition)
            clauses.append(f"JobPartition = '{partition}'")
        if status is not None:
            clauses.append(f"JobStatus = '{status.value}'")
        views: list[JobView] = []
        async for execution in self._client.list_workflows(" AND ".join(clauses), limit=limit):
            memo = await execution.memo()
            outcome = memo.get(_MEMO_OUTCOME)
            progress = JobProgress.model_validate(outcome) if outcome else None
            views.append(_view(execution, memo, progress))
        return views

    # -- control -------------------------------------------------------------------------

    async def pause(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """Stop dispatching; items in flight finish or stop at their next heartbeat."""
        job = await self.get(job_id, partition=partition)
        if job.status not in (JobStatus.ACTIVE, JobStatus.WAITING, JobStatus.PAUSED):
            raise JobStateError(f"job {job_id!r} is {job.status}; only an Active job can be paused")
        await self._handle(partition, job_id).signal(PAUSE_SIGNAL)
        return await self.get(job_id, partition=partition)

    async def resume(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        job = await self.get(job_id, partition=partition)
        if job.status not in (JobStatus.PAUSED, JobStatus.ACTIVE):
            raise JobStateError(f"job {job_id!r} is {job.status}; only a Paused job can be resumed")
        await self._handle(partition, job_id).signal(RESUME_SIGNAL)
        return await self.get(job_id, partition=partition)

    async def cancel(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """Cancel the whole tree. Cancelling a Cancelled job changes nothing."""
        job = await self.get(job_id, partition=partition)
        if job.status is JobStatus.CANCELLED:
            return job
        if job.status.is_terminal:
            raise JobStateError(f"job {job_id!r} is {job.status}; it can no longer be cancelled")
        await self._handle(partition, job_id).cancel()
        return await self.get(job_id, partition=partition)

    async def watch(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, interval: float = 0.5
    ) -> AsyncIterator[JobView]:
        """Each change of the job's progress, ending with its terminal state."""
        last: str | None = None
        while True:
            job = await self.get(job_id, partition=partition)
            key = json.dumps([job.status, job.counts.model_dump(), len(job.failures)])
            if key != last:
                last = key
                yield job
            if job.status.is_terminal:
                return
            await asyncio.sleep(interval)

    async def wait(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, interval: float = 0.5
    ) -> JobView:
        """The job once it reaches a terminal state."""
        async for job in self.watch(job_id, partition=partition, interval=interval):
            if job.status.is_terminal:
                return job
        raise AssertionError("watch ended before a terminal state")  # pragma: no cover


_CLOSED_STATUS = {
    WorkflowExecutionStatus.COMPLETED: JobStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: JobStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: JobStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: JobStatus.CANCELLED,
    WorkflowExecutionStatus.TERMINATED: JobStatus.CANCELLED,
}


def _view(
    execution: WorkflowExecution, memo: Mapping[str, Any], progress: JobProgress | None
) -> JobView:
    attributes = execution.typed_search_attributes
    definition = memo.get(_MEMO_DEFINITION) or {}
    if execution.status in _CLOSED_STATUS:
        status = _CLOSED_STATUS[execution.status]
    elif progress is not None:
        status = progress.status
    else:
        status = JobStatus(attributes.get(JOB_STATUS) or JobStatus.ACTIVE.value)
    view = JobView(
        id=attributes.get(JOB_ID) or execution.id,
        partition=attributes.get(JOB_PARTITION) or "",
        status=status,
        name=definition.get("name"),
        description=definition.get("description"),
        labels=definition.get("labels") or {},
        create_time=execution.start_time,
        close_time=execution.close_time,
    )
    if progress is None:
        return view
    counts = progress.progress
    done = counts.completed + counts.failed
    percent = 100 if status is JobStatus.COMPLETED else min(99, done * 100 // max(counts.total, 1))
    view.counts = JobCounts(
        total=counts.total,
        completed=counts.completed,
        failed=counts.failed,
        in_flight=counts.in_flight,
    )
    view.percentage_complete = percent
    view.failures = progress.failures
    view.splitting_complete = counts.splitting_complete
    view.status_reason = None if status.is_terminal else counts.waiting
    if progress.started_at is not None:
        end = progress.finished_at or progress.paused_at or datetime.now(UTC)
        active = (end - progress.started_at).total_seconds() - progress.paused_seconds
        if active > 0 and done:
            view.items_per_second = round(done / active, 1)
            if not status.is_terminal:
                view.eta_seconds = round(max(counts.total - done, 0) / (done / active), 1)
    return view
