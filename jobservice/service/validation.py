"""What a job must be to be accepted, and what the batch engine runs for it.

Pure checks and translation, with no Temporal and no job database: the target pipe, a job's
task (given, or made by its job type), and the JobDefinition a job runs as; what an id may
hold is in :mod:`jobservice.jobs.ids`.
"""

from __future__ import annotations

from pydantic import ValidationError

from jobservice.errors import InvalidJobError
from jobservice.jobs.definition import BATCH_WORKER_CLASSIFIER, JobDefinition, JobTask, NewJob
from jobservice.jobs.ids import JOB_ID_LENGTH, check_id
from jobservice.jobs.jobtypes import JobTypes
from jobservice.jobs.pipes import is_queue_name, local_handler_name
from jobservice.jobs.status import MAX_DEFINITION_BYTES
from jobservice.plugins.registry import Registry
from jobservice.plugins.task import TASK, SingleTask
from jobservice.settings import EngineSettings


def check_prerequisite_ids(prerequisites: list[str]) -> None:
    for prerequisite in prerequisites:
        check_id("prerequisite job id", prerequisite, JOB_ID_LENGTH)


class JobValidator:
    """Turns a job as submitted into what the batch engine runs, refusing what no worker could
    run: unknown plugins, builders and handlers, definitions their plugin refuses."""

    def __init__(self, registry: Registry, job_types: JobTypes, engine: EngineSettings) -> None:
        self._registry = registry
        self._job_types = job_types
        self._engine = engine

    @property
    def registry(self) -> Registry:
        return self._registry

    @property
    def job_types(self) -> JobTypes:
        return self._job_types

    def check_definition(self, definition: JobDefinition) -> None:
        """Refuse, before anything starts, a job no worker could run: unknown names, a
        definition its plugin's check refuses, params its ``local:`` handler refuses."""
        self._registry.batch_plugin(definition.batch_type)
        self._registry.builder(definition.task_message_type)
        handler = local_handler_name(definition.target_pipe)
        if handler is not None:
            self._registry.handler(handler)
        elif not is_queue_name(definition.target_pipe):
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
                f"job type {job.type!r} made a task that is not valid: {first_error(exc)}"
            ) from None

    def execution_of(self, job: NewJob, *, partition: str, job_id: str) -> JobDefinition:
        """What the batch engine runs for ``job``: the BatchWorkerTask of a BatchWorker task,
        or else a job of one item, the task, sent to its ``taskPipe``. A job it cannot run is
        refused here."""
        longest = self._engine.handler_timeout_max_seconds
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
                raise InvalidJobError(f"task.taskData: {first_error(exc)}") from None
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

    def engine_of(self, job: NewJob) -> EngineSettings:
        """The engine settings the job runs with: the service's, with the job's own handler
        time limit if it gave one."""
        timeout = job.handler_timeout_seconds
        if timeout is None:
            return self._engine
        return self._engine.model_copy(update={"handler_timeout_seconds": float(timeout)})


def first_error(exc: ValueError) -> str:
    """The first thing wrong, with where: what a user reads of a refused job."""
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)
