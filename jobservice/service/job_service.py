"""The service layer's facade: the one place that submits, reads, lists, pauses, resumes and
cancels jobs.

The CLI, the REST API and embedding applications all call it; none repeats its logic. It
delegates to its parts: :mod:`.submit` (a job checked by :mod:`.validation`, its row written,
its workflow started), :mod:`.reads` (rows through :mod:`.reader`, the batch tree through
:mod:`jobservice.temporal.orchestration`), :mod:`.control` (pause, resume, cancel, delete),
:mod:`.bulk` (an action on every job a query selects), :mod:`.failures` (the failed-item
ledger), :mod:`.pipes` (the limits of target pipes) and :mod:`.reconciler` (repairing rows
and workflows that disagree), with the job database's :class:`JobStore` beside them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from temporalio.client import Client

from jobservice.db.engine import create_database_engine
from jobservice.db.pipes import PipeState
from jobservice.db.query import JobQuery
from jobservice.db.rows import CoreRows
from jobservice.db.store import JobStore, open_store
from jobservice.errors import InvalidJobError
from jobservice.execution.batch import BatchPage
from jobservice.execution.job import NewJobRow, RedriveInput
from jobservice.jobs.definition import JobDefinition, NewJob
from jobservice.jobs.job import JobView
from jobservice.jobs.jobtypes import JobTypes
from jobservice.jobs.public import Failure, FailurePage
from jobservice.jobs.status import DEFAULT_PARTITION, JobStatus
from jobservice.jobs.steering import SteeringPatch
from jobservice.plugins.registry import Registry, installed
from jobservice.service.bulk import BulkAction, BulkReport, BulkRunner, all_or_unavailable
from jobservice.service.control import JobControl
from jobservice.service.failures import FailureReads
from jobservice.service.pipes import PipeLimits
from jobservice.service.probes import Probes, probe
from jobservice.service.reader import JobReader
from jobservice.service.reads import MAX_BATCH_PAGE, JobReads
from jobservice.service.reconciler import Reconciler
from jobservice.service.redrive import JobRedrive
from jobservice.service.stalls import JobHealth
from jobservice.service.submit import JobSubmitter, Submission
from jobservice.service.validation import JobValidator
from jobservice.settings import Settings, get_settings
from jobservice.temporal.connection import connect
from jobservice.temporal.orchestration import JobWorkflows

__all__ = ["MAX_BATCH_PAGE", "JobService", "Submission"]


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
        workflows = JobWorkflows(client, self._settings.temporal)
        health = JobHealth(client.service_client, client.namespace, self._settings)
        self._submitter = JobSubmitter(self._store, self._validator, workflows, self._settings)
        reader = JobReader(CoreRows(self._store.engine), health)
        self._reads = JobReads(self._store, reader, workflows)
        self._failures = FailureReads(self._store, reader)
        self._control = JobControl(self._store, self._reads, workflows, health)
        self._redrive = JobRedrive(
            self._store,
            self._reads,
            workflows,
            self._validator,
            self._start_again,
        )
        self._bulk = BulkRunner(self._store, self._reads, self._control)
        self._pipes = PipeLimits(self._store, workflows)
        self._reconciler = Reconciler(
            self._store,
            workflows,
            self._validator,
            self._start_again,
            grace_seconds=self._settings.database.reconcile_grace_seconds,
        )

    async def _start_again(
        self, new_row: NewJobRow, definition: JobDefinition, redrive: RedriveInput | None
    ) -> None:
        """Start the workflow of a job whose row is there: a start the reconciler makes up
        for, or the run of a redrive round."""
        await self._submitter.start(new_row, definition, fresh=False, redrive=redrive)

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
        return await self._submitter.submit(job_id, job, partition=partition)

    # -- read ----------------------------------------------------------------------------

    async def get(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """The job as :meth:`JobReader.get` reads it."""
        return await self._reads.get(job_id, partition=partition)

    async def definition(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION
    ) -> dict[str, Any]:
        """The job as it was submitted, in the API's JSON."""
        return await self._reads.definition(job_id, partition=partition)

    async def get_many(self, job_ids: Sequence[str], *, partition: str) -> list[JobView]:
        """The jobs of ``job_ids`` that exist, read in one go."""
        return await self._reads.get_many(job_ids, partition=partition)

    async def find(self, query: JobQuery) -> list[JobView]:
        """The page of jobs a query of the list endpoint selects."""
        return await self._reads.find(query)

    async def count(self, query: JobQuery) -> int:
        return await self._reads.count(query)

    async def status_counts(self, query: JobQuery) -> dict[JobStatus, int]:
        """How many of the jobs ``query`` selects have each status."""
        return await self._reads.status_counts(query)

    async def dependents(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> list[str]:
        """The unfinished jobs that wait for this one: those naming it a prerequisite."""
        return await self._reads.dependents(job_id, partition=partition)

    async def list(
        self,
        *,
        partition: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
    ) -> list[JobView]:
        """Jobs, newest first."""
        return await self._reads.latest(partition=partition, status=status, limit=limit)

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
        return await self._reads.batches(
            job_id, partition=partition, path=path, offset=offset, limit=limit
        )

    async def failures(
        self,
        job_id: str,
        *,
        partition: str = DEFAULT_PARTITION,
        limit: int = 100,
        offset: int = 0,
        round_: int | None = None,
    ) -> FailurePage:
        """A page of the job's failed items, in the order they failed, and how many it has in
        all: every one is kept, where the job's own ``failures`` shows the first few. Those
        of its last round unless ``round_`` says which (0: its first run, n: its n-th
        redrive)."""
        return await self._failures.page(
            job_id, partition=partition, limit=limit, offset=offset, round_=round_
        )

    async def all_failures(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, round_: int | None = None
    ) -> AsyncIterator[Failure]:
        """Every failed item of the job's last round (or ``round_``), a page at a time."""
        async for failure in self._failures.stream(job_id, partition=partition, round_=round_):
            yield failure

    async def watch(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, interval: float = 0.5
    ) -> AsyncIterator[JobView]:
        """Each change of the job's progress, ending with its terminal state."""
        async for job in self._reads.watch(job_id, partition=partition, interval=interval):
            yield job

    async def wait(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, interval: float = 0.5
    ) -> JobView:
        """The job once it reaches a terminal state."""
        async for job in self.watch(job_id, partition=partition, interval=interval):
            if job.status.is_terminal:
                return job
        raise AssertionError("watch ended before a terminal state")  # pragma: no cover

    # -- control -------------------------------------------------------------------------

    async def pause(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """Stop the whole tree: nothing new starts, and chunks in flight stop after the slice
        they are in. The row reads Paused when this returns; resume goes on from there."""
        return await self._control.pause(job_id, partition=partition)

    async def resume(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, settle: bool = True
    ) -> JobView:
        """Resume a Paused job; with ``settle``, return once its row shows it running."""
        return await self._control.resume(job_id, partition=partition, settle=settle)

    async def cancel(
        self, job_id: str, *, partition: str = DEFAULT_PARTITION, settle: bool = True
    ) -> JobView:
        """Cancel the whole tree. Cancelling a Cancelled job changes nothing."""
        return await self._control.cancel(job_id, partition=partition, settle=settle)

    async def tune(
        self,
        job_id: str,
        patch: SteeringPatch | Mapping[str, Any],
        *,
        partition: str = DEFAULT_PARTITION,
    ) -> JobView:
        """Change a running job's steering without pausing it: ``patch`` is a JSON merge patch
        of its ``rateLimit``, ``inFlightWindow``, ``failureTolerance`` and ``priority`` (null
        puts one back to its default). A value the job cannot take is an
        :class:`InvalidJobError` saying why; a job that has ended, a :class:`JobStateError`."""
        if not isinstance(patch, SteeringPatch):
            try:
                patch = SteeringPatch.parse(patch)
            except ValueError as exc:
                raise InvalidJobError(str(exc)) from None
        return await self._control.tune(job_id, patch, partition=partition)

    async def limit_pipe(self, name: str, rate_limit: float | None) -> PipeState:
        """Limit the target pipe ``name`` to ``rate_limit`` items a second, shared fairly by
        every job sending to it (None: no limit); in force in its running jobs within
        moments, and kept in the job database."""
        return await self._pipes.limit(name, rate_limit)

    async def pipe(self, name: str) -> PipeState:
        """The target pipe ``name``: its limit, its rate lately, its unfinished jobs."""
        return await self._pipes.get(name)

    async def pipes(self) -> Sequence[PipeState]:
        """Every target pipe with a limit or an unfinished job."""
        return await self._pipes.list()

    async def redrive(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> JobView:
        """Run a Completed, Failed or Cancelled job again in place, sending exactly its failed
        items once more, from the task messages recorded when they failed. Raises
        :class:`JobStateError` for a job that has not finished, one with nothing to retry, and
        while another redrive of it is under way."""
        return await self._redrive.redrive(job_id, partition=partition)

    async def delete(self, job_id: str, *, partition: str = DEFAULT_PARTITION) -> None:
        """Stop the job if it runs, and remove it."""
        await self._control.delete(job_id, partition=partition)

    async def delete_all(self, query: JobQuery) -> int:
        """Delete every job ``query`` selects; how many were deleted."""
        return all_or_unavailable(await self.bulk(query, BulkAction.DELETE))

    async def cancel_all(self, query: JobQuery) -> int:
        """Cancel every unfinished job ``query`` selects; how many were cancelled."""
        return all_or_unavailable(await self.bulk(query, BulkAction.CANCEL))

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
        return await self._bulk.run(query, action, progress=progress)

    # -- reconcile -----------------------------------------------------------------------

    async def reconcile(self, *, page: int = 500) -> int:
        """Start the workflow of every unfinished job that has none, and bring a row whose
        workflow has closed up to date; see :class:`Reconciler`. How many jobs it repaired."""
        return await self._reconciler.reconcile(page=page)
