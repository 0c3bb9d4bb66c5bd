"""The service layer: the one place that submits, reads, lists, pauses, resumes and cancels jobs.

The CLI, the REST API and embedding applications all call it; none repeats its logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from jobservice import tree
from jobservice.activities.pipes import local_handler_name
from jobservice.db.engine import create_database_engine
from jobservice.db.query import JobQuery
from jobservice.db.records import NewJobRow
from jobservice.db.store import Created, JobStore, now_millis, open_store
from jobservice.db.tables import JobRow
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
)
from jobservice.health import JobHealth
from jobservice.ids import CONTROL_CHARACTERS, JOB_ID_LENGTH, check_id, validate_ids
from jobservice.jobtypes import JobTypes
from jobservice.models import (
    API_BASE_PATH,
    BATCH_WORKER_CLASSIFIER,
    DEFAULT_PARTITION,
    MAX_DEFINITION_BYTES,
    JobDefinition,
    JobStatus,
    JobTask,
    JobView,
    NewJob,
)
from jobservice.plugins.task import TASK, SingleTask
from jobservice.prerequisites import never_runs
from jobservice.reader import JobReader, job_view
from jobservice.registry import Registry, installed
from jobservice.settings import EngineSettings, Settings, get_settings
from jobservice.taskids import workflow_id
from jobservice.temporal import JOB_ID, JOB_PARTITION, JOB_STATUS, connect, job_priority

_CONTROL_CHARACTER = re.compile(f"[{CONTROL_CHARACTERS}]")
_SETTLE_SECONDS = 3.0
_CANCEL_SECONDS = 10.0
"""The longest a cancel waits for the job's batch tree to close."""
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """A submitted job, and whether this call created it (False: it was there already)."""

    job: JobView
    created: bool


class JobService:
    """Job operations over the job database and a Temporal client.

    The row is what users read; the job's workflow keeps it current. Submitting writes the row
    first and then starts the workflow, so a crash in between leaves a row that
    :meth:`reconcile` starts a workflow for; a workflow whose row is missing makes it.
    """

    def __init__(
        self,
        client: Client,
        *,
        store: JobStore | None = None,
        settings: Settings | None = None,
        registry: Registry | None = None,
    ) -> None:
        self._client = client
        self._settings = settings or get_settings()
        self._store = store or JobStore(create_database_engine(self._settings.database_url()))
        self._registry = registry or installed()
        self._job_types = JobTypes.load(self._settings.job_types_dir)
        health = JobHealth(client.service_client, client.namespace, self._settings)
        self._reader = JobReader(self._store.engine, health)

    @classmethod
    async def connect(cls, settings: Settings | None = None) -> JobService:
        """A service over the configured Temporal and job database, both checked."""
        settings = settings or get_settings()
        store = await open_store(settings.database_url())
        return cls(await connect(settings.temporal), store=store, settings=settings)

    @property
    def client(self) -> Client:
        return self._client

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def store(self) -> JobStore:
        return self._store

    # -- submit --------------------------------------------------------------------------

    def check_definition(self, definition: JobDefinition) -> None:
        """Refuse, before anything starts, a job no worker could run: unknown names, a
        definition its plugin's check refuses, params its ``local:`` handler refuses."""
        self._registry.batch_plugin(definition.batch_type)
        self._registry.builder(definition.task_message_type)
        handler = local_handler_name(definition.target_pipe)
        if handler is not None:
            self._registry.handler(handler)
        elif not _queue_name(definition.target_pipe):
            raise InvalidJobError(
                f"targetPipe {definition.target_pipe!r} is not a RabbitMQ queue name (at most "
                "255 bytes, no surrounding white space, no control characters) nor "
                "local:<handler>"
            )
        self._registry.check_batch_definition(
            definition.batch_type, definition.batch_definition, definition.task_message_params
        )
        if handler is not None:
            self._registry.check_handler_params(handler, definition.task_message_params)

    def task_of(self, job: NewJob, *, partition: str, job_id: str) -> JobTask:
        """The job's task: as given, or made by its job type from its parameters."""
        if job.task is not None:
            return job.task
        job_type = self._job_types.get(job.type or "")
        rendered = job_type.render(partition_id=partition, job_id=job_id, parameters=job.parameters)
        try:
            return JobTask.model_validate(rendered)
        except ValidationError as exc:
            raise InvalidJobError(
                f"job type {job.type!r} made a task that is not valid: {_first_error(exc)}"
            ) from None

    def execution_of(self, job: NewJob, *, partition: str, job_id: str) -> JobDefinition:
        """What the batch engine runs for ``job``: the BatchWorkerTask of a BatchWorker task,
        or else a job of one item, the task, sent to its ``taskPipe``. A job it cannot run is
        refused here."""
        longest = self._settings.engine.handler_timeout_max_seconds
        if job.handler_timeout_seconds is not None and job.handler_timeout_seconds > longest:
            raise InvalidJobError(
                f"handlerTimeoutSeconds {job.handler_timeout_seconds:g} is more than this "
                f"service allows, {longest:g} seconds"
            )
        job_task = self.task_of(job, partition=partition, job_id=job_id)
        if job_task.task_classifier == BATCH_WORKER_CLASSIFIER:
            try:
                batch = job_task.batch_worker_task().model_dump()
            except ValueError as exc:
                raise InvalidJobError(f"task.taskData: {_first_error(exc)}") from None
        else:
            batch = {
                "batch_type": TASK,
                "batch_definition": SingleTask.model_validate(
                    job_task.model_dump(include=set(SingleTask.model_fields))
                ).definition(),
                "task_message_type": TASK,
                "target_pipe": job_task.task_pipe,
            }
        definition = JobDefinition(
            **batch,
            name=job.name,
            description=job.description,
            labels=job.labels,
            failure_tolerance=job.failure_tolerance,
            track_to=job_task.target_pipe,
        )
        size = len(job.model_dump_json())
        if size > MAX_DEFINITION_BYTES:
            raise InvalidJobError(
                f"the job definition is {size:,} bytes; the most is {MAX_DEFINITION_BYTES:,}. "
                "Put large inputs in a file and use the jsonl or directory batch type"
            )
        self.check_definition(definition)
        return definition

    async def submit(
        self,
        job_id: str,
        job: NewJob | JobDefinition,
        *,
        partition: str = DEFAULT_PARTITION,
    ) -> Submission:
        """Accept a job. The same id with the same body again changes nothing; with a
        different body it is a :class:`JobConflictError`."""
        validate_ids(partition, job_id)
        if isinstance(job, JobDefinition):
            job = NewJob.from_definition(job)
        # A plugin's check may read the file system or parse the definition: off the loop.
        definition = await asyncio.to_thread(
            self.execution_of, job, partition=partition, job_id=job_id
        )
        await self._check_prerequisites(partition, job_id, job.prerequisite_job_ids)
        new_row = NewJobRow(
            partition_id=partition,
            job_id=job_id,
            name=job.name,
            description=job.description,
            external_data=job.external_data,
            labels=job.labels,
            definition=job.model_dump(mode="json", by_alias=True),
            definition_hash=job.definition_hash(),
            prerequisite_job_ids=job.prerequisite_job_ids,
            delay=job.delay,
        )
        creation = await asyncio.to_thread(self._store.create, new_row)
        if creation.outcome is Created.CONFLICT:
            raise JobConflictError(
                f"job {job_id!r} in partition {partition!r} exists with a different "
                "definition; choose another job id, or delete that job first"
            )
        if creation.outcome is Created.NEW:
            await self._start(new_row, definition, fresh=True)
        return Submission(job_view(creation.row.model_dump()), creation.outcome is Created.NEW)

    async def _check_prerequisites(
        self, partition: str, job_id: str, prerequisites: list[str]
    ) -> None:
        """Refuse a job that could never run: one that waits for itself, or for a job that
        has failed or was cancelled. A prerequisite that does not exist yet is waited for."""
        for prerequisite in prerequisites:
            check_id("prerequisite job id", prerequisite, JOB_ID_LENGTH)
        if not prerequisites:
            return
        if await asyncio.to_thread(
            self._store.waits_for, partition_id=partition, job_ids=prerequisites, job_id=job_id
        ):
            raise InvalidJobError(
                f"job {job_id!r} would wait for itself: it is among its prerequisites or "
                "theirs, so it could never run"
            )
        rows = await asyncio.to_thread(
            self._store.get_many, partition_id=partition, job_ids=prerequisites
        )
        reason = never_runs(rows)
        if reason is not None:
            raise InvalidJobError(reason)

    async def _start(self, new_row: NewJobRow, definition: JobDefinition, *, fresh: bool) -> None:
        """Start the job's workflow. A failure leaves the row for :meth:`reconcile`."""
        context = JobContext(
            partition=new_row.partition_id,
            job_id=new_row.job_id,
            batch_type=definition.batch_type,
            task_message_type=definition.task_message_type,
            task_message_params=definition.task_message_params,
            target_pipe=definition.target_pipe,
            track_to=definition.track_to,
            status_check_url=self._status_check_url(new_row.partition_id, new_row.job_id),
            failure_tolerance=definition.failure_tolerance,
            engine=self._engine_of(new_row),
        )
        first_run = JobInput(
            context=context,
            definition=definition.batch_definition,
            new_row=new_row,
            prerequisite_job_ids=new_row.prerequisite_job_ids,
            delay=new_row.delay,
        )
        status = JobStatus.WAITING if first_run.waits else JobStatus.ACTIVE
        try:
            await self._client.start_workflow(
                JOB_WORKFLOW,
                first_run,
                id=workflow_id(new_row.partition_id, new_row.job_id),
                task_queue=self._settings.temporal.task_queue,
                # An earlier job of the same id may have been deleted; its closed run stays.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(JOB_ID, new_row.job_id),
                        SearchAttributePair(JOB_PARTITION, new_row.partition_id),
                        SearchAttributePair(JOB_STATUS, status.value),
                    ]
                ),
                static_summary=(
                    f"{definition.batch_type} job {new_row.partition_id}/{new_row.job_id}"
                ),
                priority=job_priority(new_row.partition_id, new_row.job_id),
            )
        except WorkflowAlreadyStartedError:
            pass  # started by an earlier call or the reconciler
        except RPCError as exc:
            if fresh:
                _log.warning(
                    "job %s/%s is accepted; its workflow will be started when Temporal "
                    "answers (%s)",
                    new_row.partition_id,
                    new_row.job_id,
                    exc.message,
                )
                return
            raise

    def _engine_of(self, new_row: NewJobRow) -> EngineSettings:
        """The engine settings the job runs with: the service's, with the job's own handler
        time limit if it gave one (its row keeps the body as the API took it)."""
        timeout = NewJob.model_validate(new_row.definition).handler_timeout_seconds
        if timeout is None:
            return self._settings.engine
        return self._settings.engine.model_copy(update={"handler_timeout_seconds": float(timeout)})

    def _status_check_url(self, partition: str, job_id: str) -> str | None:
        """The job's status endpoint as workers reach it, if the API's public URL is set."""
        public_url = self._settings.api.public_url
        if public_url is None:
            return None
        path = f"{API_BASE_PATH}/partitions/{quote(partition)}/jobs/{quote(job_id)}/status"
        return public_url.rstrip("/") + path

    # -- read ----------------------------------------------------------------------------

    def _handle(self, partition: str, job_id: str) -> WorkflowHandle[Any, Any]:
        return self._client.get_workflow_handle(workflow_id(partition, job_id))

    async def get(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """The job as :meth:`JobReader.get` reads it."""
        return await self._reader.get(job_id, partition=partition)

    async def find(self, query: JobQuery) -> list[JobView]:
        """The page of jobs a query of the list endpoint selects."""
        rows = await asyncio.to_thread(self._store.find, query)
        return await self._reader.views([row.model_dump() for row in rows])

    async def count(self, query: JobQuery) -> int:
        return await asyncio.to_thread(self._store.count, query)

    async def list(
        self,
        *,
        partition: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
    ) -> list[JobView]:
        """Jobs, newest first."""
        if partition is not None:
            validate_ids(partition)
        rows = await asyncio.to_thread(
            self._store.latest, partition_id=partition, status=status, limit=limit
        )
        return await self._reader.views([row.model_dump() for row in rows])

    # -- control -------------------------------------------------------------------------

    async def pause(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """Stop the whole tree: nothing new starts, and chunks in flight stop after the slice
        they are in. The row reads Paused when this returns; resume goes on from there."""
        job = await self.get(job_id, partition=partition)
        if job.status is JobStatus.PAUSED:
            return job
        # The row reads Paused before the signal goes: chunks read it between slices and stop
        # at once, and a write the workflow made before it took the pause in cannot undo it.
        if not await self._set_status(partition, job_id, JobStatus.PAUSED, was=[job.status]):
            job = await self.get(job_id, partition=partition)
            if job.status is JobStatus.PAUSED:
                return job
            raise JobStateError(
                f"job {job_id!r} is {job.status}; only an Active or Waiting job can be paused"
            )
        try:
            await self._signal(partition, job_id, PAUSE_SIGNAL)
        except BaseException:
            await self._set_status(partition, job_id, job.status, was=[JobStatus.PAUSED])
            raise
        await self._tell_tree(partition, job_id, tree.Word.PAUSE)
        return await self.get(job_id, partition=partition)

    async def resume(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        job = await self.get(job_id, partition=partition)
        if job.status is not JobStatus.PAUSED:
            raise JobStateError(f"job {job_id!r} is {job.status}; only a Paused job can be resumed")
        await self._signal(partition, job_id, RESUME_SIGNAL)
        return await self._settled(partition, job_id, {JobStatus.ACTIVE, JobStatus.WAITING})

    async def cancel(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, settle: bool = True
    ) -> JobView:
        """Cancel the whole tree. Cancelling a Cancelled job changes nothing."""
        job = await self.get(job_id, partition=partition)
        if job.status is JobStatus.CANCELLED:
            return job
        if job.status.is_terminal:
            raise JobStateError(f"job {job_id!r} is {job.status}; it can no longer be cancelled")
        handle = self._handle(partition, job_id)
        try:
            await handle.cancel()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise _unavailable(exc) from None
            if await self._execution(partition, job_id) is not None:
                # It has just ended: its own last write to the row says how.
                return await self._settled(partition, job_id, {JobStatus.CANCELLED})
        await self._tell_tree(partition, job_id, tree.Word.CANCEL)
        # Temporal holds the request now; the row says so at once, whether or not a worker
        # is there yet to stop the job's batches.
        await self._set_status(partition, job_id, JobStatus.CANCELLED)
        if not settle:
            return job
        await self._tree_closed(partition, job_id)
        return await self.get(job_id, partition=partition)

    async def delete(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> None:
        """Stop the job if it runs, and remove it."""
        row = await self._reader.row(partition, job_id)
        if not JobStatus(row["status"]).is_terminal:
            try:
                await self._handle(partition, job_id).terminate(reason="the job was deleted")
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise _unavailable(exc) from None
        await asyncio.to_thread(self._store.delete, partition_id=partition, job_id=job_id)

    async def delete_all(self, query: JobQuery) -> int:
        """Delete every job ``query`` selects; how many were deleted."""
        deleted = 0
        for job_id in await asyncio.to_thread(self._store.selected_ids, query):
            with contextlib.suppress(JobNotFoundError):  # deleted meanwhile by someone else
                await self.delete(job_id, partition=query.partition_id)
                deleted += 1
        return deleted

    async def cancel_all(self, query: JobQuery) -> int:
        """Cancel every unfinished job ``query`` selects; how many were cancelled."""
        unfinished = replace(query, status_type="NotFinished")
        cancelled = 0
        for job_id in await asyncio.to_thread(self._store.selected_ids, unfinished):
            with contextlib.suppress(JobNotFoundError, JobStateError):  # it ended meanwhile
                await self.cancel(job_id, partition=query.partition_id, settle=False)
                cancelled += 1
        return cancelled

    async def _execution(self, partition: str, job_id: str) -> WorkflowExecution | None:
        """The job's workflow execution as Temporal describes it; None when there is none."""
        try:
            return await self._handle(partition, job_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise _unavailable(exc) from None

    async def _signal(self, partition: str, job_id: str, signal: str) -> None:
        try:
            await self._handle(partition, job_id).signal(signal)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise JobStateError(
                    f"job {job_id!r} has no running workflow yet; try again shortly"
                ) from None
            raise _unavailable(exc) from None

    async def _set_status(
        self,
        partition: str,
        job_id: str,
        status: JobStatus,
        *,
        was: Sequence[JobStatus] | None = None,
    ) -> bool:
        return await asyncio.to_thread(
            self._store.set_status, partition_id=partition, job_id=job_id, status=status, was=was
        )

    async def _tree(self, partition: str, job_id: str, *, batches_only: bool) -> set[str]:
        try:
            return await tree.running(self._client, partition, job_id, batches_only=batches_only)
        except RPCError as exc:
            raise _unavailable(exc) from None

    async def _tell_tree(self, partition: str, job_id: str, word: tree.Word) -> None:
        """Tell every running batch at once, besides the root, which passes word on too."""
        try:
            await tree.tell_batches(self._client, partition, job_id, word)
        except RPCError as exc:
            raise _unavailable(exc) from None

    async def _tree_closed(self, partition: str, job_id: str) -> None:
        """Wait until no workflow of the job's tree runs: at most a few seconds once none has
        closed for a while (no worker may be there to close them), and ten in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CANCEL_SECONDS
        running = await self._tree(partition, job_id, batches_only=False)
        quiet_since = loop.time()
        while running and loop.time() < deadline and loop.time() - quiet_since < _SETTLE_SECONDS:
            await asyncio.sleep(0.1)
            still = await self._tree(partition, job_id, batches_only=False)
            if len(still) < len(running):
                quiet_since = loop.time()
            running = still

    async def _settled(self, partition: str, job_id: str, wanted: set[JobStatus]) -> JobView:
        """The job once its row shows one of ``wanted`` (the workflow writes it at once), or
        as it is after a few seconds without a worker to do so."""
        deadline = asyncio.get_running_loop().time() + _SETTLE_SECONDS
        while True:
            job = await self.get(job_id, partition=partition)
            if job.status in wanted or asyncio.get_running_loop().time() > deadline:
                return job
            await asyncio.sleep(0.05)

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

    # -- reconcile -----------------------------------------------------------------------

    async def reconcile(self, *, page: int = 500) -> int:
        """Start the workflow of every unfinished job that has none, and bring a row whose
        workflow has closed up to date. Returns how many jobs it repaired.

        A job that cannot be repaired here (its plugin is not installed in this process, say)
        is logged and left for a worker that can; Temporal not answering ends the pass."""
        # Rows quiet for the grace period at least; with none, every row written by now.
        updated_by = now_millis() - int(self._settings.database.reconcile_grace_seconds * 1000)
        repaired = 0
        after: tuple[str, str] | None = None
        while True:
            rows = await asyncio.to_thread(
                self._store.unfinished, updated_by=updated_by, after=after, limit=page
            )
            for row in rows:
                try:
                    repaired += await self._reconcile(row)
                except UnavailableError:
                    raise
                except Exception as exc:
                    _log.warning(
                        "job %s/%s: its row and workflow disagree and cannot be reconciled "
                        "here: %s",
                        row.partition_id,
                        row.job_id,
                        exc,
                    )
            if len(rows) < page:
                return repaired
            after = (rows[-1].partition_id, rows[-1].job_id)

    async def _reconcile(self, row: JobRow) -> int:
        """Repair one unfinished job whose row has been quiet; 1 when it needed it."""
        execution = await self._execution(row.partition_id, row.job_id)
        started = execution is not None and (
            execution.start_time.timestamp() * 1000 >= row.create_time - 1000
        )
        if not started:
            new_row = _new_row(row)
            job = NewJob.model_validate(new_row.definition)
            definition = await asyncio.to_thread(
                self.execution_of, job, partition=row.partition_id, job_id=row.job_id
            )
            await self._start(new_row, definition, fresh=False)
            return 1
        if execution is not None and execution.status in _CLOSED_STATUS:
            await self._set_status(row.partition_id, row.job_id, _CLOSED_STATUS[execution.status])
            return 1
        return 0


_CLOSED_STATUS = {
    WorkflowExecutionStatus.COMPLETED: JobStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: JobStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: JobStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: JobStatus.CANCELLED,
    WorkflowExecutionStatus.TERMINATED: JobStatus.CANCELLED,
}


def _queue_name(name: str) -> bool:
    return (
        len(name.encode()) <= 255 and name.strip() == name and not _CONTROL_CHARACTER.search(name)
    )


def _unavailable(exc: RPCError) -> UnavailableError:
    return UnavailableError(f"Temporal did not answer: {exc.message}")


def _new_row(row: JobRow) -> NewJobRow:
    return NewJobRow.model_validate(row.model_dump(include=set(NewJobRow.model_fields)))


def _first_error(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)
