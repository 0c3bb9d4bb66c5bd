"""Submitting a job: checked, written as a row, then started as a workflow."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from temporalio.service import RPCError

from jobservice.db.prerequisites import never_runs
from jobservice.db.store import Created, JobStore
from jobservice.errors import InvalidJobError, JobConflictError
from jobservice.execution.batch import JobContext
from jobservice.execution.job import JobInput, NewJobRow, RedriveInput
from jobservice.jobs.definition import JobDefinition, NewJob
from jobservice.jobs.ids import validate_ids
from jobservice.jobs.job import JobBase, JobView
from jobservice.jobs.public import API_BASE_PATH
from jobservice.metrics import JOBS_SUBMITTED
from jobservice.service.pipes import PipeLimits
from jobservice.service.queues import TargetQueues
from jobservice.service.reader import job_view
from jobservice.service.validation import JobValidator, check_prerequisite_ids
from jobservice.settings import Settings
from jobservice.temporal.orchestration import JobWorkflows

_RUN_AS_DEFINED = set(JobContext.model_fields) & set(JobDefinition.model_fields)
"""What every batch of a job takes as the job's definition gives it: the batch type, the
builder and its params, the target pipe, trackTo and the failure tolerance."""
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """A submitted job, and whether this call created it (False: it was there already)."""

    job: JobView
    created: bool


class JobSubmitter:
    """Accepts jobs: the row is written first and the workflow started after it, so a crash
    in between leaves a row that the reconciler starts a workflow for."""

    def __init__(
        self,
        store: JobStore,
        validator: JobValidator,
        workflows: JobWorkflows,
        settings: Settings,
    ) -> None:
        self._store = store
        self._validator = validator
        self._workflows = workflows
        self._settings = settings
        self._pipes = PipeLimits(store, workflows)
        self._queues = TargetQueues(settings.rabbitmq)

    async def submit(
        self, job_id: str, job: NewJob | JobDefinition, *, partition: str
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
        await self._queues.check(definition.target_pipe)
        steering = job.steering(self._validator.engine_of(job).in_flight_window)
        new_row = NewJobRow(
            **job.model_dump(include=set(JobBase.model_fields)),
            partition_id=partition,
            job_id=job_id,
            definition=job.model_dump(mode="json", by_alias=True),
            definition_hash=job.definition_hash(),
            prerequisite_job_ids=job.prerequisite_job_ids,
            delay=job.delay,
            target_pipe=definition.target_pipe,
        ).with_steering(steering)
        creation = await asyncio.to_thread(self._store.create, new_row)
        if creation.outcome is Created.CONFLICT:
            differs = ", ".join(_differing(creation.row.definition, new_row.definition))
            raise JobConflictError(
                f"job {job_id!r} already exists in partition {partition!r} with a different "
                f"definition (it differs in {differs or 'its body'}); choose another job id, "
                "or delete that job first"
            )
        if creation.outcome is Created.NEW:
            JOBS_SUBMITTED.labels(definition.batch_type).inc()
            await self.start(new_row, definition, fresh=True)
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

    async def start(
        self,
        new_row: NewJobRow,
        definition: JobDefinition,
        *,
        fresh: bool,
        redrive: RedriveInput | None = None,
    ) -> None:
        """Start the job's workflow, or with ``redrive`` the run of a redrive round. A
        failure of a ``fresh`` job's start leaves its row for the reconciler; else it
        raises."""
        job = NewJob.model_validate(new_row.definition)
        engine = self._validator.engine_of(job)
        context = JobContext(
            **definition.model_dump(include=_RUN_AS_DEFINED),
            partition=new_row.partition_id,
            job_id=new_row.job_id,
            status_check_url=self._status_check_url(new_row.partition_id, new_row.job_id),
            status_check_interval_millis=self._settings.api.status_cache_seconds * 1000,
            # The row keeps the body as the API took it, with the job's own time limit.
            engine=engine,
            round=redrive.round if redrive else 0,
            carries_on=redrive.carries_on if redrive else False,
            # As the row has it: a redrive runs as the job was last tuned.
            steering=new_row.steering(definition.failure_tolerance, engine.in_flight_window),
        )
        pipe = definition.target_pipe
        limit = await self._pipes.limit_of(pipe)
        steering = context.submitted_steering().model_copy(update={"pipe_limit": limit})
        context.steering = steering
        first_run = JobInput(
            context=context,
            definition=definition.batch_definition,
            new_row=new_row,
            prerequisite_job_ids=new_row.prerequisite_job_ids,
            delay=new_row.delay,
        )
        if redrive is not None:  # its row is there, and it waits for nothing
            first_run = JobInput(
                context=context,
                definition=definition.batch_definition,
                redrive=redrive,
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
        key = (context.partition, context.job_id)
        await self._pipes.joined(key, pipe, own_limit=steering.rate_limit, told=limit)

    def _status_check_url(self, partition: str, job_id: str) -> str | None:
        """The job's status endpoint as workers reach it, if the API's public URL is set."""
        public_url = self._settings.api.public_url
        if public_url is None:
            return None
        path = f"{API_BASE_PATH}/partitions/{quote(partition)}/jobs/{quote(job_id)}/status"
        return public_url.rstrip("/") + path


def _differing(kept: dict[str, Any], sent: dict[str, Any]) -> list[str]:
    """The fields of a job's body, as the API names them, that ``sent`` has otherwise than
    ``kept``."""
    return sorted(name for name in {*kept, *sent} if kept.get(name) != sent.get(name))
