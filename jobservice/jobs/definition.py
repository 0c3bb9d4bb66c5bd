"""What a job is asked to do: the reference system's task and its BatchWorker task, the REST
API's create body (:class:`NewJob`) and a flat job file (:class:`JobDefinition`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Annotated, Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from jobservice.jobs.job import CAMEL_CASE, CamelModel, JobBase, default_if_null, nullable
from jobservice.jobs.pipes import LOCAL_PIPE_PREFIX
from jobservice.jobs.steering import (
    IN_FLIGHT_WINDOW_MEANS,
    PRIORITY_MEANS,
    RATE_LIMIT_MEANS,
    Steering,
    SteeringChecks,
)
from jobservice.jobs.tolerance import (
    TOLERANCE_JSON_SCHEMA,
    FailureTolerance,
    not_a_tolerance,
    parse_tolerance,
)

MAX_BODY_DEPTH = 32
"""How deeply a job's JSON may nest objects and lists."""
BATCH_WORKER_CLASSIFIER = "BatchWorker"
BATCH_WORKER_PIPE = "batch-worker"
"""The task pipe of a job's BatchWorker task, as the reference system names it."""


class BatchWorkerTask(CamelModel):
    """The reference Batch Worker's task: what to split, with which plugin, and where items go."""

    batch_definition: str = Field(min_length=1)
    batch_type: str = Field(min_length=1)
    task_message_type: str | None = None
    task_message_params: dict[str, str] = Field(default_factory=dict)
    target_pipe: str = Field(min_length=1)

    @field_validator("batch_definition", mode="before")
    @classmethod
    def _definition_as_text(cls, value: Any) -> Any:
        # A YAML or JSON job file may hold a list or object; the plugin gets it as JSON text.
        if isinstance(value, list | dict):
            return json.dumps(value)
        return value

    @field_validator("task_message_params", mode="before")
    @classmethod
    def _params_as_text(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return value


def _unless_none(value: object) -> bool:
    return value is None


class SteeringAtSubmit(CamelModel, SteeringChecks):
    """The steering a job may be submitted with (see :mod:`jobservice.jobs.steering`); each
    left out of the stored body when not given, so that a body sent before these fields
    existed keeps its digest."""

    rate_limit: float | None = Field(
        default=None, exclude_if=_unless_none, description=RATE_LIMIT_MEANS
    )
    in_flight_window: int | None = Field(
        default=None, exclude_if=_unless_none, description=IN_FLIGHT_WINDOW_MEANS
    )
    priority: int | None = Field(default=None, exclude_if=_unless_none, description=PRIORITY_MEANS)


class JobDefinition(BatchWorkerTask, JobBase, SteeringAtSubmit):
    """A job file: the BatchWorkerTask, with a job's name, description and labels."""

    failure_tolerance: FailureTolerance = Field(default_factory=FailureTolerance)
    prerequisite_job_ids: list[str] = Field(default_factory=list)
    delay: int = Field(default=0, ge=0, description="Seconds to wait after the prerequisites.")
    track_to: str | None = Field(
        default=None,
        description="Where tracking of the job's tasks ends (a job task's targetPipe); "
        "default: targetPipe.",
    )

    @field_validator("failure_tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: Any) -> Any:
        return parse_tolerance(value)

    @model_validator(mode="after")
    def _local_pipe_named(self) -> Self:
        if self.target_pipe == LOCAL_PIPE_PREFIX:
            raise ValueError("targetPipe 'local:' names no handler; use local:<handler>")
        return self


class JobTask(CamelModel):
    """The reference system's task: sent to ``taskPipe``, its outcome tracked to ``targetPipe``.

    A ``BatchWorker`` task, whose ``taskData`` is a :class:`BatchWorkerTask`, runs in the batch
    engine here.
    """

    task_classifier: str = Field(min_length=1)
    task_api_version: int
    task_data: dict[str, Any] | str
    task_data_encoding: Literal["utf8", "base64"] | None = None
    task_pipe: str = Field(min_length=1)
    target_pipe: str | None = Field(
        default=None,
        min_length=1,
        description="Where the task's output goes once it is done, which is where its tracking "
        "ends; null or left out: the output is not forwarded anywhere.",
    )

    @field_validator("target_pipe", mode="before")
    @classmethod
    def _target_pipe_named(cls, value: Any) -> Any:
        if value == "":
            raise ValueError("the target pipe is empty; name a queue, or send null for none")
        return value

    @field_validator("task_api_version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value == 0:
            raise ValueError("taskApiVersion must not be 0")
        return value

    def batch_worker_task(self) -> BatchWorkerTask:
        """The BatchWorkerTask in ``taskData``: an object, or JSON text in its encoding."""
        data: Any = self.task_data
        if isinstance(data, str):
            try:
                text = (
                    base64.b64decode(data, validate=True)
                    if self.task_data_encoding == ("base64")
                    else data.encode()
                )
                data = json.loads(text)
            except (ValueError, binascii.Error) as exc:
                raise ValueError(
                    f"taskData of a {BATCH_WORKER_CLASSIFIER} task is not a JSON object "
                    f"({self.task_data_encoding or 'utf8'}): {exc}"
                ) from None
        return BatchWorkerTask.model_validate(data)


class NewJob(JobBase, SteeringAtSubmit):
    """A job as the REST API takes it: a ``task``, or a ``type`` with ``parameters``."""

    model_config = ConfigDict(
        **CAMEL_CASE, json_schema_extra=nullable("labels", "prerequisiteJobIds", "delay")
    )

    prerequisite_job_ids: list[str] = Field(
        default_factory=list,
        description="Jobs of the partition that must be Completed before this one starts; "
        "null and blank ids are left out, as the reference system does.",
    )
    delay: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="Seconds to wait after the prerequisites.",
    )
    task: JobTask | None = None
    type: str | None = None
    parameters: Any = None
    failure_tolerance: Annotated[
        FailureTolerance, WithJsonSchema(TOLERANCE_JSON_SCHEMA, mode="validation")
    ] = Field(default_factory=FailureTolerance)
    handler_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        # Left out of the stored body when not given, so that a body sent before this field
        # existed keeps its digest.
        exclude_if=lambda timeout: timeout is None,
        description="Seconds an item handler of a local:<handler> target pipe may take per item; "
        "an item whose call takes longer fails. Default and most allowed: the service's settings "
        "(60 and 3600 unless configured).",
    )

    @model_validator(mode="before")
    @classmethod
    def _shallow(cls, value: Any) -> Any:
        # Deeper JSON would exhaust the stack of whatever walks it next (hashing, Temporal).
        where = _too_deep(value, MAX_BODY_DEPTH)
        if where is not None:
            raise ValueError(
                f"the job nests objects and lists deeper than {MAX_BODY_DEPTH} levels, at"
                f" {where}; flatten it"
            )
        return value

    @field_validator("delay", mode="before")
    @classmethod
    def _unset(cls, value: Any, info: ValidationInfo) -> Any:
        return default_if_null(cls, value, info)

    @field_validator("prerequisite_job_ids", mode="before")
    @classmethod
    def _named_prerequisites(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, list):
            return [job_id for job_id in value if not _blank(job_id)]
        return value

    @field_validator("failure_tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: Any) -> Any:
        # A client sends a count or a percentage; the model's fields are not part of the API.
        if isinstance(value, dict):
            raise ValueError(not_a_tolerance(value))
        return parse_tolerance(value)

    @field_serializer("failure_tolerance")
    def _tolerance_text(self, tolerance: FailureTolerance) -> str:
        return str(tolerance)

    @model_validator(mode="after")
    def _task_or_type(self) -> Self:
        if (self.task is None) == (self.type is None):
            raise ValueError("give either task, or type with parameters; not both, not neither")
        if self.task is None and self.parameters is None:
            self.parameters = {}
        if self.task is not None and self.parameters is not None:
            raise ValueError("parameters go with type, not with task")
        return self

    def steering(self, window: int) -> Steering:
        """The steering the job starts with; ``window``: the service's in-flight window, for a
        job that names none."""
        return Steering(
            rate_limit=self.rate_limit,
            in_flight_window=self.in_flight_window or window,
            failure_tolerance=self.failure_tolerance,
            priority=self.priority or Steering().priority,
        )

    def definition_hash(self) -> str:
        """A digest of the body, to tell the same job sent again from a different one."""
        body = self.model_dump(mode="json", by_alias=True)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_definition(cls, definition: JobDefinition) -> NewJob:
        """The job a flat job file (a BatchWorkerTask with a name and labels) describes."""
        task = BatchWorkerTask.model_validate(definition.model_dump(include=_BATCH_FIELDS))
        return cls(
            **definition.model_dump(include=_JOB_FILE_FIELDS),
            failure_tolerance=definition.failure_tolerance,
            task=JobTask(
                task_classifier=BATCH_WORKER_CLASSIFIER,
                task_api_version=1,
                task_data=task.model_dump(mode="json", by_alias=True),
                task_pipe=BATCH_WORKER_PIPE,
                target_pipe=definition.track_to or definition.target_pipe,
            ),
        )


_BATCH_FIELDS = set(BatchWorkerTask.model_fields)
_JOB_FILE_FIELDS = (
    set(JobBase.model_fields)
    | set(SteeringAtSubmit.model_fields)
    | {"prerequisite_job_ids", "delay"}
)
"""What a job file says of its job besides its task and failure tolerance."""


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _too_deep(value: Any, most: int) -> str | None:
    """Where ``value`` nests objects and lists deeper than ``most`` levels, or None."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > most:
            return path.lstrip(".")
        entries = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((child, depth + 1, f"{path}.{key}") for key, child in entries)
    return None
