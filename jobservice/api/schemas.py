"""What the API sends back, in the reference system's JSON."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from jobservice.models import Failure, JobCounts, JobStatus, JobView


class _Public(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class JobPublic(_Public):
    """A job as ``GET /partitions/{p}/jobs/{j}`` shows it; times are epoch milliseconds."""

    id: str
    name: str | None = None
    description: str | None = None
    external_data: str | None = None
    create_time: int
    last_update_time: int
    status: JobStatus
    percentage_complete: float
    failures: list[Failure] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    counts: JobCounts = Field(default_factory=JobCounts)
    status_reason: str | None = None

    @classmethod
    def of(cls, job: JobView) -> JobPublic:
        created = int(job.create_time.timestamp() * 1000) if job.create_time else 0
        updated = int(job.last_update_time.timestamp() * 1000) if job.last_update_time else 0
        return cls(
            id=job.id,
            name=job.name,
            description=job.description,
            external_data=job.external_data,
            create_time=created,
            last_update_time=updated,
            status=job.status,
            percentage_complete=job.percentage_complete,
            failures=job.failures,
            labels=job.labels,
            counts=job.counts,
            status_reason=job.status_reason,
        )


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
