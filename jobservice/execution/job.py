"""The job workflow's input and answer, the row it keeps, and its prerequisites."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from jobservice.execution.batch import BatchState, JobContext, Progress
from jobservice.jobs.job import Failure, JobBase, JobState
from jobservice.jobs.status import JobStatus
from jobservice.jobs.steering import DEFAULT_PRIORITY, Steering
from jobservice.jobs.tolerance import FailureTolerance


class NewJobRow(JobBase):
    """Everything a job row is made from; the workflow carries it to make a missing row."""

    partition_id: str
    job_id: str
    definition: dict[str, Any]
    definition_hash: str
    prerequisite_job_ids: list[str] = Field(default_factory=list)
    delay: int = 0
    rate_limit: float | None = None
    in_flight_window: int | None = None
    failure_tolerance: str | None = None
    priority: int = DEFAULT_PRIORITY
    target_pipe: str | None = None

    def with_steering(self, steering: Steering) -> NewJobRow:
        return self.model_copy(
            update={
                "rate_limit": steering.rate_limit,
                "in_flight_window": steering.in_flight_window,
                "failure_tolerance": str(steering.failure_tolerance),
                "priority": steering.priority,
            }
        )

    def steering(self, tolerance: FailureTolerance, window: int) -> Steering:
        """The job's steering as its row keeps it; a row made before it kept any has the
        definition's ``tolerance`` and the service's ``window``."""
        return Steering(
            rate_limit=self.rate_limit,
            in_flight_window=self.in_flight_window or window,
            failure_tolerance=tolerance
            if self.failure_tolerance is None
            else self.failure_tolerance,
            priority=self.priority,
        )


class RedriveInput(BaseModel):
    """A redrive run: the round, how many items it sends again, and the job's counts before
    it, which the round's own counts move."""

    round: int
    items: int
    total: int
    completed: int
    failed: int
    carries_on: bool = False
    """The job stopped before it reached every item: its tree carries on from where it
    stopped first, then the round's failed items are sent again."""


class JobInput(BaseModel):
    context: JobContext
    definition: str
    new_row: NewJobRow | None = None
    """The job's row, on the first run only: the workflow makes it if it is missing."""
    prerequisite_job_ids: list[str] = Field(default_factory=list)
    """Jobs that must be Completed before this one starts; then it waits ``delay`` seconds."""
    delay: int = 0
    state: BatchState | None = None
    paused: bool = False
    started_at: datetime | None = None
    paused_seconds: float = 0.0
    redrive: RedriveInput | None = None
    """Set on the runs of a redrive: the job's root batch sends its failed items again."""
    steering: Steering | None = None
    """The job's steering as it was when the run before continued as new; None: as the job
    was submitted (its context's)."""

    @property
    def waits(self) -> bool:
        """Whether the job starts Waiting: it has not run yet and has prerequisites or a delay."""
        return self.state is None and bool(self.prerequisite_job_ids or self.delay)


class JobProgress(BaseModel):
    """What the job workflow answers to the ``progress`` query, and records when it ends."""

    status: JobStatus
    progress: Progress
    started_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    finished_at: datetime | None = None
    failures: list[Failure] = Field(default_factory=list)


class JobRecord(JobState):
    """A job's state as its workflow sees it, to be written to its row."""

    partition_id: str
    job_id: str
    round: int = 0
    """The round of the run that writes it: a run whose job was redriven since writes nothing."""
    resumed: bool = False
    """The job was resumed since its last record: a Paused row may read Active again."""
    new_row: NewJobRow | None = None
    """Given on a job's first record: the row is made from it if it is missing."""
    ended: bool = False
    """The job's last record, made as it ends (a cancelled job reads Cancelled before it)."""


class JobKey(BaseModel):
    partition_id: str
    job_id: str


class SteerRecord(JobKey):
    """A job's new steering, for its row; ``free_pace``: give up the slots its batches took."""

    steering: Steering
    free_pace: bool = False


def job_pace(partition_id: str, job_id: str) -> str:
    """The key of a job's pace (``jobservice.db.pace``)."""
    return f"job:{partition_id}/{job_id}"


class PaceRequest(BaseModel):
    """A slot for ``items`` of a rate-limited job, at ``rate`` items a second."""

    pace: str
    items: int
    rate: float


class PipeSlotRequest(BaseModel):
    """A slot for at most ``items`` of a job sending to the limited ``pipe``, for at most
    ``seconds`` of its share of the pipe's limit; ``rate``: the job's own limit, if it has
    one."""

    pace: str
    pipe: str
    items: int
    rate: float | None = None
    seconds: float


class PipeWord(BaseModel):
    """What the service tells a job of its target pipe: its limit (None: none) and the deal
    of its shares (``jobservice.db.pipes``)."""

    limit: float | None = None
    epoch: int = 0


class PipeSlot(BaseModel):
    """A slot of a job's share of its pipe: ``items`` from ``start`` (epoch seconds) at
    ``rate``; a ``rate`` of None: neither the pipe nor the job has a limit now, and the items
    go as fast as they may."""

    start: float
    items: int
    rate: float | None = None


class RoundKey(JobKey):
    """A redrive round of a job."""

    round: int


class PrerequisiteQuery(BaseModel):
    partition_id: str
    job_id: str
    prerequisite_job_ids: list[str]


class PrerequisiteState(BaseModel):
    """Where a waiting job's prerequisites stand."""

    waiting_for: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    """Prerequisites that do not exist (yet); also in ``waiting_for``."""
    failure: Failure | None = None
    """Set when a prerequisite Failed or was Cancelled: the job can never run."""

    def reason(self) -> str:
        """The job's status reason while it waits."""
        reason = f"waiting for prerequisite jobs {', '.join(self.waiting_for)}"
        if self.missing:
            reason += f" ({', '.join(self.missing)} not created yet)"
        return reason
