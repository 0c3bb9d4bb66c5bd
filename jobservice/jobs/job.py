"""A job as users give it and read it back: the fields every model of a job shares, its
counts and failures, and the service's view of it. How a job's JSON is read lives here too:
camelCase, text the job database can store, labels within their limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from jobservice.jobs.status import JobStatus
from jobservice.jobs.steering import (
    DEFAULT_PRIORITY,
    IN_FLIGHT_WINDOW_MEANS,
    PRIORITY_MEANS,
    RATE_LIMIT_MEANS,
)

LABEL_KEY = re.compile(r"[A-Za-z0-9_:-]+")
"""A label key, in a job's labels and in queries over them."""
LABEL_KEY_LENGTH = 255
"""The longest label key: the job database's column."""
LABEL_VALUE_LENGTH = 500
"""The longest label value; four bytes a character still fit PostgreSQL's index entry."""
MAX_LABELS = 100
"""Labels a job may have."""


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


class CamelModel(BaseModel):
    model_config = CAMEL_CASE


def nullable(*fields: str) -> Callable[[dict[str, Any]], None]:
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


def default_if_null(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    if value is None and info.field_name is not None:
        return model.model_fields[info.field_name].get_default(call_default_factory=True)
    return value


class Failure(CamelModel):
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


REDRIVE_COUNT_MEANS = "how often the job's failed items were sent again (redriven)"
HELD_MEANS = (
    "results of the job's items, recorded while it was paused, that wait on its paused pipe "
    "to be passed on to the queue their 'to' names when it resumes"
)
DROPPED_MEANS = (
    "results of the job's items that named a 'to' queue and were not passed on, the job having "
    "been cancelled or having failed"
)


RECENT_RATE_MEANS = "over the last ten seconds or so the job ran, as its workflow measured it"


def waiting_items(total: int, done: int, in_flight: int) -> int:
    """How many items are waiting (:data:`WAITING_MEANS`) of ``total``."""
    return max(0, total - done - in_flight)


class JobCounts(CamelModel):
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
        return default_if_null(cls, value, info)

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
    recent_items_per_second: float | None = Field(
        default=None, description=f"Items a second: {RECENT_RATE_MEANS}."
    )
    eta_seconds: float | None = None
    failures: list[Failure] = Field(default_factory=list)

    @property
    def stopped_short(self) -> bool:
        """Whether the job ended Failed or Cancelled before it reached every item: a
        redrive carries it on from where it stopped."""
        counts = self.counts
        return self.status in (JobStatus.FAILED, JobStatus.CANCELLED) and not reached_every_item(
            counts.total, counts.done, self.splitting_complete
        )


def reached_every_item(total: int, done: int, splitting_complete: bool) -> bool:
    """Whether a job has counted an end for every item it has: all split, none left."""
    return splitting_complete and done >= total


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
    held_messages: int = Field(default=0, description=HELD_MEANS)
    dropped_messages: int = Field(default=0, description=DROPPED_MEANS)
    redrive_count: int = Field(default=0, description=REDRIVE_COUNT_MEANS)
    last_redrive_time: datetime | None = None
    rate_limit: float | None = Field(default=None, description=RATE_LIMIT_MEANS)
    in_flight_window: int | None = Field(default=None, description=IN_FLIGHT_WINDOW_MEANS)
    failure_tolerance: str = Field(
        default="0", description="Failed items the job accepts: a count or a percentage."
    )
    priority: int = Field(default=DEFAULT_PRIORITY, description=PRIORITY_MEANS)
