"""The "Submit a job" form: what the page offers, and the job a posted form describes.

A job is submitted one of two ways, as the REST API takes it: by a job type, whose parameters
are inputs of its schema (:func:`~jobservice.web.dashboard.fields.schema_fields`), or by a
BatchWorker task: a batch type and definition, a task message type and params, a target pipe
(:mod:`jobservice.web.dashboard.inputs`). A form whose ``type`` is set makes a job of that type and
reads none of the task's inputs; each job type is its own form, as their ``parameters.*`` inputs
differ. Which partitions a user may submit to is the caller's to check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from jobservice.errors import InvalidJobError
from jobservice.jobs.definition import (
    BATCH_WORKER_CLASSIFIER,
    BATCH_WORKER_PIPE,
    BatchWorkerTask,
    NewJob,
)
from jobservice.jobs.ids import JOB_ID_LENGTH, PARTITION_ID_LENGTH, check_id
from jobservice.jobs.jobtypes import JobTypes
from jobservice.jobs.pipes import LOCAL_PIPE_PREFIX
from jobservice.plugins.registry import Registry
from jobservice.web.dashboard.fields import (
    Choice,
    FormError,
    FormField,
    posted,
    schema_fields,
    schema_values,
)
from jobservice.web.dashboard.inputs import (
    BATCH_TYPE,
    JOB_ID,
    JOB_INPUTS,
    PARTITION,
    TARGET_PIPE,
    TASK_INPUTS,
    TASK_MESSAGE_TYPE,
    TYPE,
    read_inputs,
)

__all__ = [
    "Choice",
    "FormError",
    "FormField",
    "JobTypeForm",
    "SubmitForm",
    "job_from_form",
    "schema_fields",
    "submit_form",
]


@dataclass(frozen=True)
class JobTypeForm:
    """One job type as the form offers it: its id, what it does, its parameters' inputs."""

    id: str
    description: str | None
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class SubmitForm:
    """What the page renders: the choices the installed plugins and the user's partitions give,
    and every input, with those choices in place, in ``job_fields`` and ``task_fields``."""

    batch_types: tuple[Choice, ...]
    builders: tuple[Choice, ...]
    target_pipes: tuple[Choice, ...]
    partitions: tuple[Choice, ...]
    job_types: tuple[JobTypeForm, ...]
    job_fields: tuple[FormField, ...]
    task_fields: tuple[FormField, ...]


def submit_form(registry: Registry, job_types: JobTypes, partitions: Sequence[str]) -> SubmitForm:
    """The form for a user who may submit to ``partitions``, with what ``registry`` installs."""
    handlers = [f"{LOCAL_PIPE_PREFIX}{name}" for name in sorted(registry.handlers)]
    choices = {
        PARTITION: tuple(Choice(partition, partition) for partition in partitions),
        BATCH_TYPE: _choices(registry.batch_plugins),
        TASK_MESSAGE_TYPE: _choices(registry.builders),
        TARGET_PIPE: _choices(handlers),
    }
    fields = {
        name: tuple(replace(field, choices=choices.get(field.name, ())) for field, _ in inputs)
        for name, inputs in (("job", JOB_INPUTS), ("task", TASK_INPUTS))
    }
    return SubmitForm(
        batch_types=choices[BATCH_TYPE],
        builders=choices[TASK_MESSAGE_TYPE],
        target_pipes=choices[TARGET_PIPE],
        partitions=choices[PARTITION],
        job_types=tuple(
            JobTypeForm(
                id=job_type.id,
                description=job_type.description or _title(job_type.parameters_schema),
                fields=tuple(schema_fields(job_type.parameters_schema)),
            )
            for job_type in (job_types.types[type_id] for type_id in job_types.ids())
        ),
        job_fields=fields["job"],
        task_fields=fields["task"],
    )


def job_from_form(form: Mapping[str, object], job_types: JobTypes) -> tuple[str, str, NewJob]:
    """The partition, job id and job a posted form describes: the REST API's PUT body, made
    from its inputs. A :class:`FormError` names each input that is missing or cannot be read.

    Whether a job type's parameters satisfy its schema is the service's to say on submit; the
    form only gives them the schema's types.
    """
    problems: dict[str, str] = {}
    body = read_inputs(form, JOB_INPUTS, problems)
    ids = {name: body.pop(name, "") for name in (JOB_ID, PARTITION)}
    for name, kind, longest in (
        (JOB_ID, "job id", JOB_ID_LENGTH),
        (PARTITION, "partition id", PARTITION_ID_LENGTH),
    ):
        try:
            if ids[name]:
                check_id(kind, ids[name], longest)
        except InvalidJobError as exc:
            problems.setdefault(name, f"{name}: {exc}")
    type_id = (posted(form, TYPE) or "").strip()
    task_data: dict[str, Any] | None = None
    if type_id:
        body[TYPE] = type_id
        try:
            schema = job_types.get(type_id).parameters_schema
        except InvalidJobError as exc:
            problems[TYPE] = f"{TYPE}: {exc}"
        else:
            body["parameters"] = schema_values(schema, form, problems)
    else:
        task_data = read_inputs(form, TASK_INPUTS, problems)
    if problems:
        raise FormError(problems)
    try:
        if task_data is not None:
            body["task"] = _batch_worker_task(BatchWorkerTask.model_validate(task_data))
        return ids[PARTITION], ids[JOB_ID], NewJob.model_validate(body)
    except ValidationError as exc:
        raise FormError(_model_problems(exc)) from None


def _batch_worker_task(task: BatchWorkerTask) -> dict[str, Any]:
    """The job's task, as :meth:`NewJob.from_definition` makes it of a job file: the same job
    from a file and from the form is the same definition, not a conflicting one."""
    return {
        "taskClassifier": BATCH_WORKER_CLASSIFIER,
        "taskApiVersion": 1,
        "taskPipe": BATCH_WORKER_PIPE,
        "taskData": task.model_dump(mode="json", by_alias=True),
        TARGET_PIPE: task.target_pipe,
    }


def _model_problems(exc: ValidationError) -> dict[str, str]:
    """The job model's errors by input, named as the API's JSON names its fields."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.setdefault(name, f"{name}: {message}" if name else message)
    return problems


def _choices(names: Sequence[str] | Mapping[str, object]) -> tuple[Choice, ...]:
    return tuple(Choice(name, name) for name in sorted(names))


def _title(schema: Mapping[str, Any]) -> str | None:
    title = schema.get("title")
    return title if isinstance(title, str) else None
