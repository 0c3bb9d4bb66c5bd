"""What the API sends back, in the reference system's JSON."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from jobservice.models import Failure, JobBase, JobCounts, JobStatus, JobView


class _Public(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def epoch_millis(time: datetime | None) -> int:
    """A time as the reference system's JSON gives it: milliseconds since the epoch, 0 for none."""
    return int(time.timestamp() * 1000) if time else 0


class FailurePublic(_Public):
    """One failure as the reference system reports it; ``failureTime`` in epoch milliseconds."""

    failure_id: str
    failure_time: int
    failure_source: str
    failure_message: str

    @classmethod
    def of(cls, failure: Failure) -> FailurePublic:
        return cls(
            failure_id=failure.failure_id,
            failure_time=epoch_millis(failure.failure_time),
            failure_source=failure.failure_source,
            failure_message=failure.failure_message,
        )


class JobPublic(JobBase):
    """A job as ``GET /partitions/{p}/jobs/{j}`` shows it; times are epoch milliseconds."""

    # A client reads the answers of a newer server too: fields it does not know are left out.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: str
    create_time: int
    last_update_time: int
    status: JobStatus
    percentage_complete: float
    failures: list[FailurePublic] = Field(default_factory=list)
    counts: JobCounts = Field(default_factory=JobCounts)
    status_reason: str | None = None

    @classmethod
    def of(cls, job: JobView) -> JobPublic:
        return cls.model_validate(
            {
                **job.model_dump(include=_AS_VIEWED),
                "create_time": epoch_millis(job.create_time),
                "last_update_time": epoch_millis(job.last_update_time),
                "failures": [FailurePublic.of(failure) for failure in job.failures],
            }
        )


_AS_VIEWED = set(JobPublic.model_fields) - {"create_time", "last_update_time", "failures"}
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
