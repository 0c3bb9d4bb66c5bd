"""The service layer: the one place that submits, reads, lists, pauses, resumes and cancels jobs.

The CLI, the REST API and embedding applications all call it; none repeats its logic. It is a
facade over three parts: :mod:`jobservice.validation` (what a job must be, and what it runs
as), :mod:`jobservice.temporal.orchestration` (its workflows in Temporal) and
:mod:`jobservice.reconciler` (repairing rows and workflows that disagree), with the job
database's :class:`JobStore` beside them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from temporalio.client import Client
from temporalio.service import RPCError

from jobservice.bulk import BulkAction, BulkReport, Outcome
from jobservice.db.engine import create_database_engine
from jobservice.db.query import JobQuery
from jobservice.db.rows import CoreRows
from jobservice.db.store import Created, JobStore, open_store
from jobservice.errors import (
    InvalidJobError,
    InvalidRequestError,
    JobConflictError,
    JobNotFoundError,
    JobStateError,
    UnavailableError,
)
from jobservice.execution.batch import BatchesRequest, BatchPage, JobContext
from jobservice.execution.job import JobInput, NewJobRow
from jobservice.execution.names import PAUSE_SIGNAL, RESUME_SIGNAL
from jobservice.execution.tree import Word
from jobservice.health import JobHealth
from jobservice.jobs.definition import JobDefinition, NewJob
from jobservice.jobs.ids import validate_ids
from jobservice.jobs.job import JobBase, JobView
from jobservice.jobs.jobtypes import JobTypes
from jobservice.jobs.public import API_BASE_PATH
from jobservice.jobs.status import DEFAULT_PARTITION, JobStatus
from jobservice.metrics import JOBS_SUBMITTED
from jobservice.plugins.registry import Registry, installed
from jobservice.prerequisites import never_runs
from jobservice.probes import Probes, probe
from jobservice.reader import JobReader, job_view
from jobservice.reconciler import Reconciler
from jobservice.settings import Settings, get_settings
from jobservice.temporal.connection import connect
from jobservice.temporal.orchestration import JobWorkflows
from jobservice.validation import JobValidator, check_prerequisite_ids

_RUN_AS_DEFINED = set(JobContext.model_fields) & set(JobDefinition.model_fields)
"""What every batch of a job takes as the job's definition gives it: the batch type, the
builder and its params, the target pipe, trackTo and the failure tolerance."""
_BULK_AT_ONCE = 8
"""Jobs a bulk action works on at once."""
_SETTLE_SECONDS = 3.0
"""How long a resume waits for the job's row to show it."""
MAX_BATCH_PAGE = 500
"""The most running child batches one page of the batch tree lists."""
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """A submitted job, and whether this call created it (False: it was there already)."""

    job: JobView
    created: bool


def _all_or_unavailable(report: BulkReport) -> int:
    """How many jobs a REST bulk endpoint changed; if it failed on some, a 503 to retry."""
    if report.failed:
        raise UnavailableError(
            f"{report}: the action failed on {report.failed:,} of the jobs; send it again"
        )
    return report.done


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
        self._validator = JobValidator(
            registry or installed(),
            JobTypes.load(self._settings.job_types_dir),
            self._settings.engine,
        )
        self._workflows = JobWorkflows(client, self._settings.temporal)
        self._reconciler = Reconciler(
            self._store,
            self._workflows,
            self._validator,
            lambda new_row, definition: self._start(new_row, definition, fresh=False),
            grace_seconds=self._settings.database.reconcile_grace_seconds,
        )
        self._health = JobHealth(client.service_client, client.namespace, self._settings)
        self._reader = JobReader(CoreRows(self._store.engine), self._health)

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

    @property
    def registry(self) -> Registry:
        """The plugins, builders and handlers the service accepts jobs for."""
        return self._validator.registry

    @property
    def job_types(self) -> JobTypes:
        return self._validator.job_types

    async def probe(self, *, rabbitmq: bool = True) -> Probes:
        """Whether Temporal, the job database and (unless told not to) RabbitMQ answer."""
        broker = self._settings.rabbitmq if rabbitmq else None
        return await probe(self._client.service_client, self._store.engine, broker)

    # -- submit --------------------------------------------------------------------------

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
            self._validator.execution_of, job, partition=partition, job_id=job_id
        )
        await self._check_prerequisites(partition, job_id, job.prerequisite_job_ids)
        new_row = NewJobRow(
            **job.model_dump(include=set(JobBase.model_fields)),
            partition_id=partition,
            job_id=job_id,
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
            JOBS_SUBMITTED.labels(definition.batch_type).inc()
            await self._start(new_row, definition, fresh=True)
        return Submission(job_view(creation.row.model_dump()), creation.outcome is Created.NEW)

    async def _check_prerequisites(
        self, partition: str, job_id: str, prerequisites: list[str]
    ) -> None:
        """Refuse a job that could never run: one that waits for itself, or for a job that
        has failed or was cancelled. A prerequisite that does not exist yet is waited for."""
        check_prerequisite_ids(prerequisites)
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
        job = NewJob.model_validate(new_row.definition)
        context = JobContext(
            **definition.model_dump(include=_RUN_AS_DEFINED),
            partition=new_row.partition_id,
            job_id=new_row.job_id,
            status_check_url=self._status_check_url(new_row.partition_id, new_row.job_id),
            # The row keeps the body as the API took it, with the job's own time limit.
            engine=self._validator.engine_of(job),
        )
        first_run = JobInput(
            context=context,
            definition=definition.batch_definition,
            new_row=new_row,
            prerequisite_job_ids=new_row.prerequisite_job_ids,
            delay=new_row.delay,
        )
        summary = f"{definition.batch_type} job {new_row.partition_id}/{new_row.job_id}"
        try:
            await self._workflows.start(first_run, summary=summary)
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

    def _status_check_url(self, partition: str, job_id: str) -> str | None:
        """The job's status endpoint as workers reach it, if the API's public URL is set."""
        public_url = self._settings.api.public_url
        if public_url is None:
            return None
        path = f"{API_BASE_PATH}/partitions/{quote(partition)}/jobs/{quote(job_id)}/status"
        return public_url.rstrip("/") + path

    # -- read ----------------------------------------------------------------------------

    async def get(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """The job as :meth:`JobReader.get` reads it."""
        return await self._reader.get(job_id, partition=partition)

    async def definition(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION
    ) -> dict[str, Any]:
        """The job as it was submitted, in the API's JSON."""
        row = await self._reader.row(partition, job_id)
        return dict(row["definition"])

    async def get_many(self, job_ids: Sequence[str], *, partition: str) -> list[JobView]:
        """The jobs of ``job_ids`` that exist, read in one go."""
        validate_ids(partition)
        for job_id in job_ids:
            validate_ids(partition, job_id)
        rows = await asyncio.to_thread(
            self._store.get_many, partition_id=partition, job_ids=job_ids
        )
        return await self._reader.views([row.model_dump() for row in rows])

    async def find(self, query: JobQuery) -> list[JobView]:
        """The page of jobs a query of the list endpoint selects."""
        rows = await asyncio.to_thread(self._store.find, query)
        return await self._reader.views([row.model_dump() for row in rows])

    async def count(self, query: JobQuery) -> int:
        return await asyncio.to_thread(self._store.count, query)

    async def status_counts(self, query: JobQuery) -> dict[JobStatus, int]:
        """How many of the jobs ``query`` selects have each status."""
        return await asyncio.to_thread(self._store.status_counts, query)

    async def dependents(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> list[str]:
        """The unfinished jobs that wait for this one: those naming it a prerequisite."""
        validate_ids(partition, job_id)
        return await asyncio.to_thread(
            self._store.dependents, partition_id=partition, job_id=job_id
        )

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

    async def batches(
        self,
        job_id: str,
        *,
        partition: str = DEFAULT_PARTITION,
        path: Sequence[int] = (),
        offset: int = 0,
        limit: int = 50,
    ) -> BatchPage | None:
        """The job's batch at ``path`` (the root batch: none; ``[2, 5]``: the fifth sub-batch
        of the second) with its rolled-up progress, and a page of its running child batches,
        as its workflow knows them now; None when that batch is not running (it has ended,
        or has not started). Raises :class:`UnavailableError` when no worker answers."""
        if not 1 <= limit <= MAX_BATCH_PAGE:
            raise InvalidRequestError(f"limit {limit} is out of range: from 1 to {MAX_BATCH_PAGE}")
        if offset < 0:
            raise InvalidRequestError(f"offset {offset} is negative: the first batch is at 0")
        if any(index < 1 for index in path):
            raise InvalidRequestError(f"batch path {list(path)}: sub-batches count from 1")
        await self._reader.row(partition, job_id)  # ids checked, and the job exists
        request = BatchesRequest(offset=offset, limit=limit)
        return await self._workflows.batches(partition, job_id, path, request)

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
            await self._workflows.signal(partition, job_id, PAUSE_SIGNAL)
        except BaseException:
            await self._set_status(partition, job_id, job.status, was=[JobStatus.PAUSED])
            raise
        await self._workflows.tell_tree(partition, job_id, Word.PAUSE)
        return await self.get(job_id, partition=partition)

    async def resume(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, settle: bool = True
    ) -> JobView:
        """Resume a Paused job; with ``settle``, return once its row shows it running."""
        job = await self.get(job_id, partition=partition)
        if job.status is not JobStatus.PAUSED:
            raise JobStateError(f"job {job_id!r} is {job.status}; only a Paused job can be resumed")
        await self._workflows.signal(partition, job_id, RESUME_SIGNAL)
        if not settle:
            return job
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
        cancelling = await self._workflows.cancel(partition, job_id)
        if not cancelling and await self._workflows.execution(partition, job_id) is not None:
            # It has just ended: its own last write to the row says how.
            return await self._settled(partition, job_id, {JobStatus.CANCELLED})
        await self._workflows.tell_tree(partition, job_id, Word.CANCEL)
        # Temporal holds the request now; the row says so at once, whether or not a worker
        # is there yet to stop the job's batches.
        await self._set_status(partition, job_id, JobStatus.CANCELLED)
        if not settle:
            return job
        await self._workflows.tree_closed(partition, job_id, served=self._health.workers_polling)
        return await self.get(job_id, partition=partition)

    async def delete(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> None:
        """Stop the job if it runs, and remove it."""
        row = await self._reader.row(partition, job_id)
        if not JobStatus(row["status"]).is_terminal:
            await self._workflows.terminate(partition, job_id, reason="the job was deleted")
        await asyncio.to_thread(self._store.delete, partition_id=partition, job_id=job_id)

    async def delete_all(self, query: JobQuery) -> int:
        """Delete every job ``query`` selects; how many were deleted."""
        return _all_or_unavailable(await self.bulk(query, BulkAction.DELETE))

    async def cancel_all(self, query: JobQuery) -> int:
        """Cancel every unfinished job ``query`` selects; how many were cancelled."""
        return _all_or_unavailable(await self.bulk(query, BulkAction.CANCEL))

    async def bulk(
        self,
        query: JobQuery,
        action: BulkAction,
        *,
        progress: Callable[[BulkReport, int], None] | None = None,
    ) -> BulkReport:
        """Pause, resume, cancel or delete every job ``query`` selects (of any partition it
        names), a few at a time; how many each outcome took. A job that changes meanwhile
        counts as it turned out: one that ended before its cancel reached it is finished. A
        job the action fails on (Temporal away, say) is counted so, and the rest go on.
        ``progress`` hears the report so far, and how many were selected: once they are
        selected, then after each job."""
        counts = dict.fromkeys(Outcome, 0)
        selected = await asyncio.to_thread(self._store.selected, query)
        todo = iter(selected)

        def report() -> BulkReport:
            return BulkReport(action, **{outcome.value: n for outcome, n in counts.items()})

        async def act_on_the_next() -> None:
            for partition, job_id, status in todo:
                outcome = action.outcome(status)
                if outcome is Outcome.DONE:
                    outcome = await self._act(action, partition, job_id)
                counts[outcome] += 1
                if progress is not None:
                    progress(report(), len(selected))

        if progress is not None:
            progress(report(), len(selected))
        await asyncio.gather(*(act_on_the_next() for _ in range(_BULK_AT_ONCE)))
        return report()

    async def _act(self, action: BulkAction, partition: str, job_id: str) -> Outcome:
        """Act on one job; never raises, so that one job's failure stops no other."""
        try:
            if action is BulkAction.DELETE:
                await self.delete(job_id, partition=partition)
            elif action is BulkAction.CANCEL:
                await self.cancel(job_id, partition=partition, settle=False)
            elif action is BulkAction.RESUME:
                await self.resume(job_id, partition=partition, settle=False)
            else:
                await self.pause(job_id, partition=partition)
        except JobNotFoundError:
            return Outcome.GONE
        except JobStateError:
            return await self._outcome_now(action, partition, job_id)
        except Exception as exc:
            _log.warning("%s of job %s/%s failed: %s", action.value, partition, job_id, exc)
            return Outcome.FAILED
        return Outcome.DONE

    async def _outcome_now(self, action: BulkAction, partition: str, job_id: str) -> Outcome:
        """What an action that found a job changed meanwhile did: as the job is now."""
        try:
            return action.outcome((await self.get(job_id, partition=partition)).status)
        except JobNotFoundError:
            return Outcome.GONE
        except Exception as exc:
            _log.warning("job %s/%s could not be read again: %s", partition, job_id, exc)
            return Outcome.FAILED

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
        workflow has closed up to date; see :class:`Reconciler`. How many jobs it repaired."""
        return await self._reconciler.reconcile(page=page)
