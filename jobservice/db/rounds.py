"""A job's redrive begun in the job database: its failed items copied into a new round of
the failed-item ledger, and its row Active again, in one transaction (see
:mod:`jobservice.db.failures`). A job that stopped before it reached every item carries on
from where its batches stood (:mod:`jobservice.db.checkpoints`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from jobservice.db import checkpoints, failures
from jobservice.db.rows import now_millis
from jobservice.db.tables import JobRow
from jobservice.errors import JobNotFoundError, JobStateError
from jobservice.jobs.job import reached_every_item
from jobservice.jobs.status import JobStatus


@dataclass(frozen=True)
class Redrive:
    """A redrive just begun: its round, the items it sends again, and the job before it."""

    round: int
    items: int
    status_before: JobStatus
    row: JobRow
    resumes: bool = False
    """Whether it first carries on the job's tree where it stopped (a job cancelled, or
    failed, before it reached all its items), and then sends the failed items again."""


def _under_way(job_id: str) -> JobStateError:
    return JobStateError(f"job {job_id!r} is being redriven already; one redrive at a time")


def start_redrive(session: Session, *, partition_id: str, job_id: str) -> Redrive:
    """Take a finished job into its next round: its failed items copied into the round,
    to be sent again, and its row Active with the round's number and time. Raises
    :class:`JobStateError` when the job has not finished, has nothing to retry, or another
    redrive took it first. ``session`` is committed here."""
    key = (partition_id, job_id)
    row = session.get(JobRow, key)
    if row is None:
        raise JobNotFoundError(f"no job {job_id!r} in partition {partition_id!r}")
    status = JobStatus(row.status)
    if not status.is_terminal:
        raise JobStateError(
            f"job {job_id!r} is {status}; only a Completed, Failed or Cancelled job can be redriven"
        )
    unreached = row.total - row.completed - row.failed
    resumes = not reached_every_item(row.total, row.completed + row.failed, row.splitting_complete)
    if resumes and not _resumable(session, key, row):
        never = f"{unreached:,} of its items" if unreached > 0 else "part of its items"
        raise JobStateError(
            f"job {job_id!r} is {status} with {never} never reached, and it stopped before "
            "jobs kept where they stopped: submit the job again to run those"
        )
    round_ = row.redrive_count + 1
    try:
        items = failures.start_round(session.connection(), key, round_, numbered=not resumes)
    except IntegrityError:
        raise _under_way(job_id) from None
    if not items and row.failed:
        raise JobStateError(
            f"job {job_id!r} counts {row.failed:,} failed items but none is in the "
            "failed-item ledger (it ran before failures were kept there): submit the "
            "job again to retry them"
        )
    if not items and not resumes:
        raise JobStateError(f"job {job_id!r} has no failed items to retry")
    now = now_millis()
    moved = session.execute(
        update(JobRow)
        .where(
            col(JobRow.partition_id) == partition_id,
            col(JobRow.job_id) == job_id,
            col(JobRow.status) == row.status,
            col(JobRow.redrive_count) == row.redrive_count,
        )
        .values(
            status=JobStatus.ACTIVE.value,
            status_reason=None,
            redrive_count=round_,
            last_redrive_time=now,
            last_update_time=now,
            in_flight=0,
            eta_seconds=None,
        )
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        raise _under_way(job_id)
    try:
        session.commit()
    except IntegrityError:
        raise _under_way(job_id) from None
    return Redrive(round_, items, status, row, resumes)


def _resumable(session: Session, key: tuple[str, str], row: JobRow) -> bool:
    """Whether a redrive can carry on where the job stopped: its root batch wrote where it
    stood, or the job stopped before it had done or counted anything."""
    if checkpoints.has_root(session.connection(), key):
        return True
    return row.total == 0 and row.completed == 0 and row.failed == 0
