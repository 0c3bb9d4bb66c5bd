"""What the job's row says, made from the job's state: its status and reason, counts,
percentage, rate and time left, failures, and the bookkeeping of what was last written.
Pure: the job workflow gives it the time and its tree's progress, and writes the records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import Progress
    from jobservice.execution.job import JobProgress, JobRecord, NewJobRow, RedriveInput
    from jobservice.jobs.job import Failure, JobCounts
    from jobservice.jobs.status import JobStatus

_STEADY = {"items_per_second": None, "recent_items_per_second": None, "eta_seconds": None}
"""What moves with the clock alone: not a change worth a write."""
RECENT = timedelta(seconds=10)
"""How far back the recent rate looks."""


@dataclass
class JobRowKeeping:
    """The times and failures of one job, and what its row was last written with."""

    partition: str
    job_id: str
    failure_details: int
    started_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    finished_at: datetime | None = None
    failures: list[Failure] = field(default_factory=list)
    """The job's own failures (its tolerance exceeded, a prerequisite failed)."""
    new_row: NewJobRow | None = None
    """What a missing row is made from, until the first write."""
    resumed: bool = False
    """Resumed since the row was last written: the next write takes it out of Paused."""
    written: JobRecord | None = None
    round: int = 0
    """The job's round: its records are written only while no redrive has followed it."""
    done_before: int = 0
    """Items a redrive found done and does not send again: left out of its rate."""
    samples: list[tuple[datetime, int]] = field(default_factory=list)
    """Items done as each write found them, over the last :data:`RECENT`, for its rate."""

    def paused_total(self, now: datetime) -> float:
        """Seconds the job has spent paused, the pause it is in included."""
        extra = (now - self.paused_at).total_seconds() if self.paused_at else 0.0
        return self.paused_seconds + extra

    def snapshot(self, status: JobStatus, progress: Progress) -> JobProgress:
        """What the ``progress`` query answers, and the job's result."""
        return JobProgress(
            status=status,
            progress=progress,
            started_at=self.started_at,
            paused_at=self.paused_at,
            paused_seconds=self.paused_seconds,
            finished_at=self.finished_at,
            failures=(self.failures + progress.failures)[: self.failure_details],
        )

    def record(
        self,
        status: JobStatus,
        progress: Progress,
        *,
        waiting_reason: str | None,
        now: datetime,
        ended: bool = False,
    ) -> JobRecord:
        """The row as it stands, for the ``record_job`` activity."""
        snapshot = self.snapshot(status, progress)
        counts = snapshot.progress
        done = counts.completed + counts.failed
        # Items in flight count by the percentage their workers last reported.
        percent = (
            100.0
            if status is JobStatus.COMPLETED
            else min(99.0, (done * 100 + counts.in_flight_percent) // max(counts.total, 1))
        )
        # Paused, or waiting for something (its broker, say): the rate says nothing then of
        # when the job will end.
        held = status is JobStatus.PAUSED or bool(waiting_reason or counts.waiting)
        return JobRecord(
            partition_id=self.partition,
            job_id=self.job_id,
            status=status,
            status_reason=None if status.is_terminal else waiting_reason or counts.waiting,
            splitting_complete=counts.splitting_complete,
            counts=JobCounts(
                total=counts.total,
                completed=counts.completed,
                failed=counts.failed,
                in_flight=counts.in_flight,
            ),
            percentage_complete=float(percent),
            **self.rate(status, done, counts.total, now=now, held=held),
            recent_items_per_second=None
            if held or status.is_terminal
            else self.recent_rate(done, now),
            failures=snapshot.failures,
            resumed=self.resumed,
            new_row=self.new_row,
            ended=ended,
            round=self.round,
        )

    def rate(
        self, status: JobStatus, done: int, total: int, *, now: datetime, held: bool = False
    ) -> dict[str, float]:
        """Items a second while active, and the seconds left at that rate: none while the job
        is ``held``."""
        left = max(total - done, 0)
        done -= self.done_before  # a redrive's rate is of the items it sends
        if self.started_at is None or done <= 0:
            return {}
        end = self.finished_at or self.paused_at or now
        active = (end - self.started_at).total_seconds() - self.paused_seconds
        if active <= 0:
            return {}
        rate = done / active
        rates = {"items_per_second": round(rate, 1)}
        if not status.is_terminal and not held:
            rates["eta_seconds"] = round(left / rate, 1)
        return rates

    def recent_rate(self, done: int, now: datetime) -> float | None:
        """Items a second over the last :data:`RECENT` or so; None until a second has passed."""
        since = next(((time, then) for time, then in self.samples if now - time <= RECENT), None)
        if since is None or (now - since[0]).total_seconds() < 1:
            return None
        return round(max(0, done - since[1]) / (now - since[0]).total_seconds(), 1)

    def changed(self, record: JobRecord) -> bool:
        """Whether ``record`` says more than the row last written: the rate moves with the
        clock alone, so an idle job writes nothing."""
        if self.written is None:
            return True
        return record.model_copy(update=_STEADY) != self.written.model_copy(update=_STEADY)

    def wrote(self, record: JobRecord, now: datetime) -> None:
        """``record`` is in the row: the row exists, a resume has reached it, and what comes
        next is told from it."""
        self.written = record
        self.samples = [(time, done) for time, done in self.samples if now - time <= RECENT]
        self.samples.append((now, record.counts.done))
        self.new_row = None
        if record.resumed:
            self.resumed = False


def job_progress(
    progress: Progress, redrive: RedriveInput | None, *, read: bool, ended: bool
) -> Progress:
    """The job's rolled-up counts: its tree's (``progress``), or in a redrive the round's
    moving the counts the job had. ``read``: whether a redrive that carries the job's tree on
    has read where the tree stood; until it has, the job's counts are as they stood."""
    if redrive is not None and redrive.carries_on and not read:
        return Progress(total=redrive.total, completed=redrive.completed, failed=redrive.failed)
    if redrive is None or redrive.carries_on:
        return progress
    return redriven(progress, redrive, ended=ended)


def redriven(progress: Progress, redrive: RedriveInput, *, ended: bool) -> Progress:
    """The job's counts in a redrive, from the round's own: its total stays; an item sent
    again that completes moves from failed to completed. While the round runs, its items
    not yet settled are in flight or waiting, not failed; once it has ended (a cancelled
    round too), every one of them that did not complete is failed again."""
    completed = min(redrive.completed + progress.completed, redrive.total)
    failed = redrive.failed - progress.completed
    ended_now: dict[str, int] = {"in_flight": 0, "in_flight_percent": 0} if ended else {}
    if not ended:
        failed = redrive.failed - redrive.items + progress.failed
    return progress.model_copy(
        update={
            "total": redrive.total,
            "completed": completed,
            "failed": max(min(failed, redrive.total - completed), 0),
            "splitting_complete": True,
            **ended_now,
        }
    )
