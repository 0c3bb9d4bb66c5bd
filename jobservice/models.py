"""The public data model: what a user submits and what they read back."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from jobservice.jobs import DEFAULT_PARTITION as DEFAULT_PARTITION
from jobservice.jobs import MAX_DEFINITION_BYTES as MAX_DEFINITION_BYTES
from jobservice.jobs import JobStatus as JobStatus

LOCAL_PIPE_PREFIX = "local:"
"""A target pipe ``local:<handler>`` names an item handler in the worker; any other, a queue."""
QUEUE_NAME_BYTES = 255
"""The longest RabbitMQ queue name, in UTF-8 bytes."""
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def local_handler_name(target_pipe: str) -> str | None:
    """The handler a ``local:<handler>`` target pipe names; None for a queue."""
    if target_pipe.startswith(LOCAL_PIPE_PREFIX):
        return target_pipe[len(LOCAL_PIPE_PREFIX) :]
    return None


def is_local_pipe(target_pipe: str) -> bool:
    """Whether items sent to ``target_pipe`` are handled in the worker, not on a queue."""
    return target_pipe.startswith(LOCAL_PIPE_PREFIX)


def is_queue_name(name: str) -> bool:
    """Whether RabbitMQ takes ``name`` as a queue's: at most 255 bytes, no surrounding white
    space, no control characters."""
    return (
        len(name.encode()) <= QUEUE_NAME_BYTES
        and name.strip() == name
        and not _CONTROL_CHARACTER.search(name)
    )


BATCH_WORKER_CLASSIFIER = "BatchWorker"
BATCH_WORKER_PIPE = "batch-worker"
"""The task pipe of a job's BatchWorker task, as the reference system names it."""
API_BASE_PATH = "/job-service/v1"

API_KEY_HEADER = "X-API-Key"
"""The header an API key is sent in (``Authorization: Bearer`` works too)."""
"""Where the REST API's endpoints are, as the reference system has them."""
LABEL_KEY = re.compile(r"[A-Za-z0-9_:-]+")
"""A label key, in a job's labels and in queries over them."""
LABEL_KEY_LENGTH = 255
"""The longest label key: the job database's column."""
LABEL_VALUE_LENGTH = 500
"""The longest label value; four bytes a character still fit PostgreSQL's index entry."""
MAX_LABELS = 100
"""Labels a job may have."""
MAX_BODY_DEPTH = 32
"""How deeply a job's JSON may nest objects and lists."""


NUL_FREE = r"^[^\x00]*$"
"""Text without NUL, as a JSON Schema pattern."""


def _storable(text: str) -> str:
    # PostgreSQL's text cannot hold NUL; refused on every job database alike.
    if "\x00" in text:
        raise ValueError("must not contain the NUL character")
    return text


StoredText = Annotated[
    str,
    AfterValidator(_storable),
    WithJsonSchema({"type": "string", "pattern": NUL_FREE}),
]
"""Text the job database keeps in a column of its own."""


CAMEL_CASE = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
"""Reads and writes camelCase, as the reference system's JSON does; accepts snake_case too."""


class _CamelModel(BaseModel):
    model_config = CAMEL_CASE


def _nullable(*fields: str) -> Callable[[dict[str, Any]], None]:
    """A model's JSON Schema in which ``fields`` (by their JSON names) also allow null: a client
    made from the reference contract sends every field, those it leaves unset as null, which
    the model reads as left out."""

    def declare(schema: dict[str, Any]) -> None:
        for name in fields:
            field = schema.get("properties", {}).get(name)
            if field is None:
                continue
            own = {key: field.pop(key) for key in list(field) if key not in _SCHEMA_NOTES}
            field["anyOf"] = [own, {"type": "null"}]

    return declare


_SCHEMA_NOTES = ("title", "description", "default", "examples")


def _default_if_null(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    if value is None and info.field_name is not None:
        return model.model_fields[info.field_name].get_default(call_default_factory=True)
    return value


class Failure(_CamelModel):
    """One failure, as the reference system reports it."""

    failure_id: str
    failure_time: datetime
    failure_source: str
    failure_message: str


IN_FLIGHT_MEANS = (
    "items an item handler has in hand, or published to a queue and not yet settled by its "
    "worker's result"
)
WAITING_MEANS = "items still to do that are not in flight: not yet handed out, or not yet split"


def waiting_items(total: int, done: int, in_flight: int) -> int:
    """How many items are waiting (:data:`WAITING_MEANS`) of ``total``."""
    return max(0, total - done - in_flight)


class JobCounts(_CamelModel):
    """Items of a job: how many are known, done, failed, and being processed now."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = Field(default=0, description=f"In flight: {IN_FLIGHT_MEANS}.")

    @property
    def done(self) -> int:
        return self.completed + self.failed

    @property
    def waiting(self) -> int:
        return waiting_items(self.total, self.done, self.in_flight)


class JobBase(BaseModel):
    """What users give a job and read back, shared by every model of a job.

    The REST API's create body (:class:`NewJob`), a job file (:class:`JobDefinition`), the
    service's view (:class:`JobView`), the REST answer (``JobPublic``) and the row a workflow
    makes (``NewJobRow``) derive from it; the job database's row holds the same fields.
    """

    name: StoredText | None = None
    description: StoredText | None = None
    external_data: StoredText | None = None
    labels: dict[str, StoredText] = Field(
        default_factory=dict,
        json_schema_extra={
            "propertyNames": {
                "pattern": f"^{LABEL_KEY.pattern}$",
                "maxLength": LABEL_KEY_LENGTH,
            },
            "maxProperties": MAX_LABELS,
            "additionalProperties": {
                "type": "string",
                "pattern": NUL_FREE,
                "maxLength": LABEL_VALUE_LENGTH,
            },
        },
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _no_labels(cls, value: Any, info: ValidationInfo) -> Any:
        return _default_if_null(cls, value, info)

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > MAX_LABELS:
            raise ValueError(f"a job has at most {MAX_LABELS} labels, not {len(labels):,}")
        for key, value in labels.items():
            if len(key) > LABEL_KEY_LENGTH:
                raise ValueError(
                    f"label key {key[:20]!r}... is longer than {LABEL_KEY_LENGTH} characters"
                )
            if not LABEL_KEY.fullmatch(key):
                raise ValueError(f"label key {key!r} may only hold letters, digits, _ - and :")
            if len(value) > LABEL_VALUE_LENGTH:
                raise ValueError(
                    f"the value of label {key!r} is {len(value):,} characters; the most is"
                    f" {LABEL_VALUE_LENGTH}"
                )
        return labels


class JobState(BaseModel):
    """How a job stands, as its workflow records it and the service reports it."""

    status: JobStatus
    status_reason: str | None = None
    """Why an Active job is not moving, e.g. its target pipe's broker cannot be reached."""
    counts: JobCounts = Field(default_factory=JobCounts)
    percentage_complete: float = 0.0
    splitting_complete: bool = False
    items_per_second: float | None = None
    eta_seconds: float | None = None
    failures: list[Failure] = Field(default_factory=list)


class BatchWorkerTask(_CamelModel):
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


_TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$", re.ASCII)
MAX_TOLERANCE_COUNT = 2**63 - 1
"""The most failed items a count can allow: the job database's 64-bit counts."""
# What a client may send as failureTolerance (the model itself is how the service holds it).
_TOLERANCE_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_TOLERANCE_COUNT},
        {"type": "string", "pattern": r"^\s*[0-9]+([.][0-9]+)?\s*%?\s*$"},
        {"type": "null"},
    ],
    "description": "Failed items the job accepts: a count (5) or a percentage of its items "
    "(2.5%); none by default.",
    "examples": ["5", "2.5%"],
}


class FailureTolerance(BaseModel):
    """How many failed items a job accepts before it fails: a count, or a percentage of items."""

    model_config = ConfigDict(frozen=True)

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str | int | None) -> FailureTolerance:
        """``"5"`` allows five failed items, ``"2.5%"`` allows 2.5 % of them; None allows none."""
        if text is None:
            return cls(count=0)
        if isinstance(text, int):
            if text < 0:
                raise ValueError(f"failureTolerance {text} is negative")
            return cls(count=_count(text))
        match = _TOLERANCE.match(text)
        if match is None:
            raise ValueError(_not_a_tolerance(text))
        number, percent = match.groups()
        if percent:
            value = float(number)
            if value > 100:
                raise ValueError(f"failureTolerance {text!r} is over 100%")
            return cls(percent=value)
        if "." in number:
            raise ValueError(f"failureTolerance {text!r}: a count must be a whole number")
        return cls(count=_count(int(number)))

    def exceeded(self, failed: int, total: int) -> bool:
        """Whether ``failed`` items out of ``total`` is more than this tolerance allows."""
        if self.percent is not None:
            return failed * 100 > self.percent * max(total, 1)
        return failed > (self.count or 0)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count or 0)


class JobDefinition(BatchWorkerTask, JobBase):
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
        return _parse_tolerance(value)

    @model_validator(mode="after")
    def _local_pipe_named(self) -> Self:
        if self.target_pipe == LOCAL_PIPE_PREFIX:
            raise ValueError("targetPipe 'local:' names no handler; use local:<handler>")
        return self


class JobId(BaseModel):
    """Which job: first in what the service and the API show of one."""

    id: str


class _JobKey(JobId):
    partition: str


class JobView(JobBase, JobState, _JobKey):
    """A job as the service reports it: its id and partition, its state, what its user gave it,
    and when it was made, last changed and closed."""

    model_config = CAMEL_CASE

    create_time: datetime | None = None
    last_update_time: datetime | None = None
    close_time: datetime | None = None


class JobTask(_CamelModel):
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


class NewJob(JobBase):
    """A job as the REST API takes it: a ``task``, or a ``type`` with ``parameters``."""

    model_config = ConfigDict(
        **CAMEL_CASE, json_schema_extra=_nullable("labels", "prerequisiteJobIds", "delay")
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
        FailureTolerance, WithJsonSchema(_TOLERANCE_JSON_SCHEMA, mode="validation")
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
        return _default_if_null(cls, value, info)

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
            raise ValueError(_not_a_tolerance(value))
        return _parse_tolerance(value)

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
_JOB_FILE_FIELDS = set(JobBase.model_fields) | {"prerequisite_job_ids", "delay"}
"""What a job file says of its job besides its task and failure tolerance."""


def _parse_tolerance(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(_not_a_tolerance(value))
    if value is None or isinstance(value, str | int):
        return FailureTolerance.parse(value)
    if isinstance(value, dict | FailureTolerance):
        return value
    # 2.5 and 1e309 (a float to JSON), lists: only text tells a percentage from a count.
    raise ValueError(_not_a_tolerance(value))


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


def _count(count: int) -> int:
    if count > MAX_TOLERANCE_COUNT:
        raise ValueError(
            f"failureTolerance {count} is over {MAX_TOLERANCE_COUNT}, the most a count can be;"
            ' to accept any number of failures, send "100%"'
        )
    return count


def _not_a_tolerance(value: Any) -> str:
    return (
        f"failureTolerance {value!r} is neither a count (5) nor a percentage (2.5%):"
        ' send a whole number, or text such as "2.5%" between "0%" and "100%"'
    )
