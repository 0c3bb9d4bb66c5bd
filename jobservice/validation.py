"""What a job must be to be accepted, and what the batch engine runs for it.

Pure checks and translation, with no Temporal and no job database: ids, the target pipe, a
job's task (given, or made by its job type), and the JobDefinition a job runs as.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import ValidationError

from jobservice.db.tables import JOB_ID_LENGTH, PARTITION_ID_LENGTH
from jobservice.errors import InvalidJobError
from jobservice.jobtypes import JobTypes
from jobservice.models import (
    BATCH_WORKER_CLASSIFIER,
    MAX_DEFINITION_BYTES,
    JobDefinition,
    JobTask,
    NewJob,
    is_queue_name,
    local_handler_name,
)
from jobservice.plugins.task import TASK, SingleTask
from jobservice.registry import Registry
from jobservice.settings import EngineSettings

_CONTROL_CHARACTERS = r"\x00-\x1f\x7f"
ID_FORBIDDEN = r".,:;*?!|()/\s" + _CONTROL_CHARACTERS
"""What an id may not hold, as a regular expression character class's inside."""
_FORBIDDEN = re.compile(f"[{ID_FORBIDDEN}]")
_INVISIBLE = {
    "Cc": "a control",
    "Cf": "a format",
    "Co": "a private-use",
    "Cs": "a surrogate",
    "Cn": "an unassigned",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
"""The Unicode categories an id may not hold: what is invisible, or reorders or hides text
(U+202E, U+200B), or has no meaning yet."""


def check_id(kind: str, value: str, longest: int) -> None:
    """Refuse an id of ``kind`` that is empty, longer than ``longest`` or holds what no id may."""
    if not value:
        raise InvalidJobError(f"the {kind} is empty")
    if len(value) > longest:
        raise InvalidJobError(
            f"the {kind} {value[:longest]!r}... is longer than {longest} characters"
        )
    if _FORBIDDEN.search(value):
        raise InvalidJobError(
            f"the {kind} {value!r} contains one of . , : ; * ? ! | ( ) /, white space or a "
            "control character"
        )
    # Nothing invisible and nothing that reorders text, so that an id shows what it is.
    for character in value:
        category = _INVISIBLE.get(unicodedata.category(character))
        if category is not None:
            name = unicodedata.name(character, "")
            raise InvalidJobError(
                f"the {kind} {value!r} contains U+{ord(character):04X}{f' {name}' if name else ''},"
                f" {category} character; an id holds visible characters only"
            )


def validate_ids(partition: str, job_id: str | None = None) -> None:
    """Partition ids up to 40 characters, job ids up to 48, with none of ``.,:;*?!|()/``, no
    white space, and nothing invisible: no control, format, private-use, surrogate, unassigned
    or separator character."""
    check_id("partition id", partition, PARTITION_ID_LENGTH)
    if job_id is not None:
        check_id("job id", job_id, JOB_ID_LENGTH)


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
