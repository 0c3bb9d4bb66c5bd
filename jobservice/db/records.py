"""What the workflow tells the job database: a job's status and counts, never its items."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from jobservice.models import JobBase, JobState

RECORD_JOB = "record_job"
SETTLE_PREREQUISITES = "settle_prerequisites"
NOTIFY_DEPENDENTS = "notify_dependents"


class NewJobRow(JobBase):
    """Everything a job row is made from; the workflow carries it to make a missing row."""

    partition_id: str
    job_id: str
    definition: dict[str, Any]
    definition_hash: str
    prerequisite_job_ids: list[str] = Field(default_factory=list)
    delay: int = 0


class JobRecord(JobState):
    """A job's state as its workflow sees it, to be written to its row."""

    partition_id: str
    job_id: str
    resumed: bool = False
    """The job was resumed since its last record: a Paused row may read Active again."""
    new_row: NewJobRow | None = None
    """Given on a job's first record: the row is made from it if it is missing."""
