"""What the REST API sends back, in the reference system's JSON, and where it is served."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from jobservice.jobs.job import (
    DROPPED_MEANS,
    HELD_MEANS,
    RECENT_RATE_MEANS,
    REDRIVE_COUNT_MEANS,
    JobBase,
    JobCounts,
    JobId,
    JobView,
)
from jobservice.jobs.job import Failure as JobFailure
from jobservice.jobs.status import JobStatus
from jobservice.jobs.steering import (
    DEFAULT_PRIORITY,
    IN_FLIGHT_WINDOW_MEANS,
    PRIORITY_MEANS,
    RATE_LIMIT_MEANS,
    SteeringChecks,
)

API_BASE_PATH = "/job-service/v1"
"""Where the REST API's endpoints are, as the reference system has them."""
API_KEY_HEADER = "X-API-Key"
CACHEABLE_HEADER = "CacheableJobStatus"
"""The header that tells a worker it may cache a job's status answer, as the reference
contract declares it."""
"""The header an API key is sent in (``Authorization: Bearer`` works too)."""


class _Public(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def epoch_millis(time: datetime | None) -> int:
    """A time as the reference system's JSON gives it: milliseconds since the epoch, 0 for none."""
    return int(time.timestamp() * 1000) if time else 0


class Failure(_Public):
    """One failure as the reference system reports it; ``failureTime`` in epoch milliseconds."""

    failure_id: str
    failure_time: int
    failure_source: str
    failure_message: str

    @field_validator("failure_time", mode="before")
    @classmethod
    def _millis(cls, value: Any) -> Any:
        # A server of an earlier version sent the time as ISO 8601 text.
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return epoch_millis(datetime.fromisoformat(value))
        return value

    @classmethod
    def of(cls, failure: JobFailure) -> Failure:
        return cls.model_validate(
            {**failure.model_dump(), "failure_time": epoch_millis(failure.failure_time)}
        )


TOTAL_COUNT_HEADER = "X-Total-Count"
"""The header a page of a job's failures gives their number in, over all pages."""
FAILURE_PAGE_MOST = 10_000
"""The most failures one page holds."""


class FailurePage(_Public):
    """A page of a job's failed items, and how many there are in all."""

    total: int
    failures: list[Failure] = Field(default_factory=list)


class JobPublic(JobBase, JobId):
    """A job as ``GET /partitions/{p}/jobs/{j}`` shows it; times are epoch milliseconds."""

    # A client reads the answers of a newer server too: fields it does not know are left out.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    create_time: int
    last_update_time: int
    status: JobStatus
    percentage_complete: float
    failures: list[Failure] = Field(default_factory=list)
    counts: JobCounts = Field(default_factory=JobCounts)
    status_reason: str | None = None
    held_messages: int = Field(default=0, description=f"While Paused: {HELD_MEANS}.")
    dropped_messages: int = Field(default=0, description=f"Of a job that ended: {DROPPED_MEANS}.")
    redrive_count: int = Field(default=0, description=f"How often: {REDRIVE_COUNT_MEANS}.")
    last_redrive_time: int | None = Field(
        default=None, description="When it was last redriven, in epoch milliseconds."
    )
    rate_limit: float | None = Field(default=None, description=RATE_LIMIT_MEANS)
    in_flight_window: int | None = Field(default=None, description=IN_FLIGHT_WINDOW_MEANS)
    failure_tolerance: str = Field(
        default="0", description="Failed items the job accepts: a count or a percentage."
    )
    priority: int = Field(default=DEFAULT_PRIORITY, description=PRIORITY_MEANS)
    recent_items_per_second: float | None = Field(
        default=None, description=f"Items a second: {RECENT_RATE_MEANS}."
    )

    @classmethod
    def of(cls, job: JobView) -> JobPublic:
        return cls.model_validate(
            {
                **job.model_dump(include=_AS_VIEWED),
                "create_time": epoch_millis(job.create_time),
                "last_update_time": epoch_millis(job.last_update_time),
                "last_redrive_time": epoch_millis(job.last_redrive_time) or None,
                "failures": [Failure.of(failure) for failure in job.failures],
            }
        )


_AS_VIEWED = set(JobPublic.model_fields) - {
    "create_time",
    "last_update_time",
    "last_redrive_time",
    "failures",
}
"""What the REST answer shows of a job as the service reports it."""


class Message(_Public):
    """Every error: what went wrong, for a person to act on."""

    message: str


class JobsDeleted(_Public):
    jobs_deleted: int


class JobsCanceled(_Public):
    jobs_canceled: int


class Health(_Public):
    """Each service the API needs, healthy or not, and why not."""

    healthy: bool
    temporal: str
    database: str
    rabbitmq: str


PIPE_RATE_LIMIT_MEANS = (
    "items a second every job sending to the pipe may go at together, shared fairly among "
    "them; null: no limit"
)


class PipePublic(_Public):
    """A target pipe as ``GET /pipes/{name}`` shows it."""

    name: str
    rate_limit: float | None = Field(default=None, description=PIPE_RATE_LIMIT_MEANS)
    recent_items_per_second: float = Field(
        default=0.0,
        description="items a second lately, its Active jobs together, as each last measured",
    )
    jobs: int = Field(default=0, description="its unfinished jobs")


class PipePatch(SteeringChecks):
    """A change of a pipe's limit, as a JSON merge patch: ``{"rateLimit": 1000}``, or null
    for none; ``{}`` changes nothing."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    rate_limit: float | None = Field(default=None, description=PIPE_RATE_LIMIT_MEANS)

    @classmethod
    def parse(cls, patch: Any) -> PipePatch:
        """The patch ``patch`` (JSON) makes; a ValueError that says what is wrong with it."""
        try:
            return cls.model_validate(patch)
        except ValidationError as exc:
            error = exc.errors()[0]
            if error["type"] in ("extra_forbidden", "model_type"):
                raise ValueError(
                    "a change of a pipe is a JSON object with its rateLimit, e.g. "
                    '{"rateLimit": 1000}, or {"rateLimit": null} for no limit'
                ) from None
            raise ValueError(str(error["msg"]).removeprefix("Value error, ")) from None
