"""Data access for job rows: keyword-only functions over a session factory.

Every write is one transaction. Terminal statuses never change: a record for a job that has
ended is ignored, so a late or repeated write cannot undo an outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, case, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col

from jobservice.db import checkpoints, failures, pace, paused
from jobservice.db.engine import open_database
from jobservice.db.rounds import Redrive, start_redrive
from jobservice.db.rows import now_millis
from jobservice.db.tables import JobLabelRow, JobPrerequisiteRow, JobRow
from jobservice.errors import InvalidRequestError
from jobservice.execution.job import JobRecord, NewJobRow, SteerRecord, job_pace
from jobservice.jobs.status import JobStatus

if TYPE_CHECKING:
    # Only its instances reach the store: a command that reads one job need not compile it.
    from jobservice.db.query import JobQuery

SELECTION_SECONDS = 5.0
"""The longest a selection (a list, a count, the jobs a bulk operation takes) may run: a
costly filter answers 400 instead of holding the database for everyone."""
_SQLITE_STEPS = 10_000
"""SQLite virtual machine steps between two looks at the clock."""
_POSTGRES_CANCELLED = "57014"

TERMINAL = [s.value for s in JobStatus if s.is_terminal]
NOT_FINISHED = [s.value for s in JobStatus if not s.is_terminal]


async def open_store(url: str) -> JobStore:
    """A store over the job database at ``url``, once its schema is checked to be this
    version's."""
    return JobStore(await open_database(url))


class Created(Enum):
    """What creating a job row found."""

    NEW = "new"
    SAME = "same"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Creation:
    outcome: Created
    row: JobRow


class JobStore:
    """The job database."""

    def __init__(self, engine: Engine, *, selection_seconds: float = SELECTION_SECONDS) -> None:
        self.engine = engine
        self.selection_seconds = selection_seconds

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _selection(self) -> Iterator[Session]:
        """A session whose statements stop after ``selection_seconds``, with an
        :class:`InvalidRequestError` that says so."""
        limit = self.selection_seconds
        with self.session() as session:
            connection = session.connection()
            sqlite = connection.dialect.name == "sqlite"
            raw: Any = connection.connection.dbapi_connection
            if sqlite:
                deadline = time.monotonic() + limit
                raw.set_progress_handler(lambda: time.monotonic() > deadline, _SQLITE_STEPS)
            else:
                session.execute(text(f"SET LOCAL statement_timeout = {int(limit * 1000)}"))
            try:
                yield session
            except OperationalError as exc:
                if not _cut_short(exc):
                    raise
                raise InvalidRequestError(
                    f"the selection took longer than {limit:g} s; narrow it: fewer or plainer "
                    "filter terms (wildcards in label values cost most), or a status"
                ) from None
            finally:
                if sqlite:
                    raw.set_progress_handler(None, 0)

    def create(self, new: NewJobRow, *, status: JobStatus = JobStatus.WAITING) -> Creation:
        """Insert a job row, or say how it compares with the one already there."""
        existing = self.get(partition_id=new.partition_id, job_id=new.job_id)
        if existing is None:
            try:
                return Creation(Created.NEW, self._insert(new, status))
            except IntegrityError:
                existing = self.get(partition_id=new.partition_id, job_id=new.job_id)
                if existing is None:  # pragma: no cover - deleted in between
                    raise
        same = existing.definition_hash == new.definition_hash
        return Creation(Created.SAME if same else Created.CONFLICT, existing)

    def _insert(self, new: NewJobRow, status: JobStatus) -> JobRow:
        stamp = now_millis()
        row = JobRow(
            **new.model_dump(), status=status.value, create_time=stamp, last_update_time=stamp
        )
        with self.session() as session:
            session.add(row)
            session.add_all(
                JobLabelRow(partition_id=new.partition_id, job_id=new.job_id, label=k, value=v)
                for k, v in new.labels.items()
            )
            session.add_all(
                JobPrerequisiteRow(
                    partition_id=new.partition_id, job_id=new.job_id, prerequisite_job_id=p
                )
                for p in dict.fromkeys(new.prerequisite_job_ids)
            )
            session.commit()
        return row

    def get(self, *, partition_id: str, job_id: str) -> JobRow | None:
        with self.session() as session:
            return session.get(JobRow, (partition_id, job_id))

    def status_of(self, *, partition_id: str, job_id: str) -> JobStatus | None:
        """The job's status alone; None when there is no row."""
        with self.session() as session:
            status = session.scalar(
                select(col(JobRow.status)).where(
                    col(JobRow.partition_id) == partition_id, col(JobRow.job_id) == job_id
                )
            )
        return None if status is None else JobStatus(status)

    def seen(self, *, partition_id: str, job_id: str) -> tuple[JobStatus | None, int]:
        """The job's status (None when there is no row) and its round: how often it was
        redriven."""
        with self.session() as session:
            row = session.execute(
                select(col(JobRow.status), col(JobRow.redrive_count)).where(
                    col(JobRow.partition_id) == partition_id, col(JobRow.job_id) == job_id
                )
            ).first()
        return (None, 0) if row is None else (JobStatus(row[0]), int(row[1]))

    def get_many(self, *, partition_id: str, job_ids: Sequence[str]) -> list[JobRow]:
        with self.session() as session:
            statement = select(JobRow).where(
                col(JobRow.partition_id) == partition_id,
                col(JobRow.job_id).in_(list(job_ids)),
            )
            return list(session.scalars(statement))

    def record(self, record: JobRecord) -> bool:
        """Write what the workflow says of a job; make the row first if it is missing and the
        record carries it. False when there is no row (the job was deleted) or it has ended."""
        if (
            record.new_row is not None
            and self.get(partition_id=record.partition_id, job_id=record.job_id) is None
        ):
            self.create(record.new_row, status=record.status)
        status: Any = record.status.value
        if not (record.resumed or record.status.is_terminal or record.status is JobStatus.PAUSED):
            # The service writes Paused as soon as the pause is sent; a record made before the
            # workflow took the pause in must not make the job read Active again.
            status = case(
                (col(JobRow.status) == JobStatus.PAUSED.value, JobRow.status), else_=status
            )
        values = {
            "status": status,
            "status_reason": record.status_reason,
            "total": record.counts.total,
            "completed": record.counts.completed,
            "failed": record.counts.failed,
            "in_flight": record.counts.in_flight,
            "percentage_complete": record.percentage_complete,
            "splitting_complete": record.splitting_complete,
            "items_per_second": record.items_per_second,
            "recent_items_per_second": record.recent_items_per_second,
            "eta_seconds": record.eta_seconds,
            "failures": [f.model_dump(mode="json", by_alias=True) for f in record.failures],
            "last_update_time": now_millis(),
        }
        with self.session() as session:
            result = session.execute(
                update(JobRow)
                .where(
                    col(JobRow.partition_id) == record.partition_id,
                    col(JobRow.job_id) == record.job_id,
                    # The service may have written Cancelled first; the workflow's last
                    # counts still belong there.
                    col(JobRow.status).not_in(TERMINAL)
                    | (col(JobRow.status) == record.status.value),
                    # A run the job's redrive has followed writes nothing more.
                    col(JobRow.redrive_count) == record.round,
                )
                .values(**values)
            )
            session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def steer(self, record: SteerRecord) -> bool:
        """Keep a job's new steering in its row; with ``free_pace``, its batches take their
        slots again from now. False when there is no row (the job was deleted)."""
        steering = record.steering
        with self.session() as session:
            result = session.execute(
                update(JobRow)
                .where(
                    col(JobRow.partition_id) == record.partition_id,
                    col(JobRow.job_id) == record.job_id,
                )
                .values(
                    rate_limit=steering.rate_limit,
                    in_flight_window=steering.in_flight_window,
                    failure_tolerance=str(steering.failure_tolerance),
                    priority=steering.priority,
                    last_update_time=now_millis(),
                )
            )
            if record.free_pace:
                pace.free_now(session.connection(), job_pace(record.partition_id, record.job_id))
            session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def start_redrive(self, *, partition_id: str, job_id: str) -> Redrive:
        """See :func:`jobservice.db.rounds.start_redrive`."""
        with self.session() as session:
            return start_redrive(session, partition_id=partition_id, job_id=job_id)

    def set_status(
        self,
        *,
        partition_id: str,
        job_id: str,
        status: JobStatus,
        reason: str | None = None,
        was: Sequence[JobStatus] | None = None,
    ) -> bool:
        """Change an unfinished job's status directly (only from one of ``was``, if given):
        for a job no workflow runs, or before its workflow has taken a pause or cancel in."""
        allowed = col(JobRow.status).not_in(TERMINAL)
        if was is not None:
            allowed = col(JobRow.status).in_([s.value for s in was if not s.is_terminal])
        with self.session() as session:
            result = session.execute(
                update(JobRow)
                .where(
                    col(JobRow.partition_id) == partition_id,
                    col(JobRow.job_id) == job_id,
                    allowed,
                )
                .values(status=status.value, status_reason=reason, last_update_time=now_millis())
            )
            session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def delete(self, *, partition_id: str, job_id: str) -> bool:
        with self.session() as session:
            for table in (JobLabelRow, JobPrerequisiteRow):
                session.execute(
                    delete(table).where(
                        col(table.partition_id) == partition_id,
                        col(table.job_id) == job_id,
                    )
                )
            paused.job_deleted(session.connection(), (partition_id, job_id))
            failures.job_deleted(session.connection(), (partition_id, job_id))
            checkpoints.job_deleted(session.connection(), (partition_id, job_id))
            pace.job_deleted(session.connection(), (partition_id, job_id))
            result = session.execute(
                delete(JobRow).where(
                    col(JobRow.partition_id) == partition_id,
                    col(JobRow.job_id) == job_id,
                )
            )
            session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def unfinished(
        self, *, updated_by: int, after: tuple[str, str] | None = None, limit: int = 500
    ) -> list[JobRow]:
        """A page of the unfinished jobs whose row last changed at or before ``updated_by``
        (epoch ms), in (partition, job id) order after ``after``."""
        statement = select(JobRow).where(
            col(JobRow.status).in_(NOT_FINISHED),
            col(JobRow.last_update_time) <= updated_by,
        )
        if after is not None:
            partition_id, job_id = after
            statement = statement.where(
                (col(JobRow.partition_id) > partition_id)
                | ((col(JobRow.partition_id) == partition_id) & (col(JobRow.job_id) > job_id))
            )
        statement = statement.order_by(col(JobRow.partition_id), col(JobRow.job_id)).limit(limit)
        with self.session() as session:
            return list(session.scalars(statement))

    def dependents(self, *, partition_id: str, job_id: str) -> list[str]:
        """Unfinished jobs that wait for ``job_id``."""
        with self.session() as session:
            statement = (
                select(col(JobPrerequisiteRow.job_id))
                .join(
                    JobRow,
                    (col(JobRow.partition_id) == col(JobPrerequisiteRow.partition_id))
                    & (col(JobRow.job_id) == col(JobPrerequisiteRow.job_id)),
                )
                .where(
                    col(JobPrerequisiteRow.partition_id) == partition_id,
                    col(JobPrerequisiteRow.prerequisite_job_id) == job_id,
                    col(JobRow.status).in_(NOT_FINISHED),
                )
            )
            return list(session.scalars(statement))

    def waits_for(self, *, partition_id: str, job_ids: Sequence[str], job_id: str) -> bool:
        """Whether any of ``job_ids`` waits for ``job_id``, directly or through others."""
        seen: set[str] = set()
        frontier = set(job_ids)
        with self.session() as session:
            while frontier:
                if job_id in frontier:
                    return True
                seen |= frontier
                statement = select(col(JobPrerequisiteRow.prerequisite_job_id)).where(
                    col(JobPrerequisiteRow.partition_id) == partition_id,
                    col(JobPrerequisiteRow.job_id).in_(list(frontier)),
                )
                frontier = set(session.scalars(statement)) - seen
        return False

    def latest(
        self, *, partition_id: str | None, status: JobStatus | None, limit: int
    ) -> list[JobRow]:
        """The newest jobs, of a partition or all, of a status or any."""
        statement = select(JobRow)
        if partition_id is not None:
            statement = statement.where(col(JobRow.partition_id) == partition_id)
        if status is not None:
            statement = statement.where(col(JobRow.status) == status.value)
        statement = statement.order_by(col(JobRow.create_time).desc(), col(JobRow.job_id))
        with self.session() as session:
            return list(session.scalars(statement.limit(limit)))

    def find(self, query: JobQuery) -> list[JobRow]:
        """A page of the jobs ``query`` selects, in its order."""
        statement = (
            select(JobRow)
            .where(*query.where())
            .order_by(*query.order_by())
            .limit(query.limit)
            .offset(query.offset)
        )
        with self._selection() as session:
            return list(session.scalars(statement))

    def count(self, query: JobQuery) -> int:
        statement = select(func.count()).select_from(JobRow).where(*query.where())
        with self._selection() as session:
            return session.scalar(statement) or 0

    def selected(self, query: JobQuery) -> list[tuple[str, str, JobStatus]]:
        """The partition, id and status of every job ``query`` selects, ignoring its page."""
        statement = (
            select(col(JobRow.partition_id), col(JobRow.job_id), col(JobRow.status))
            .where(*query.where())
            .order_by(col(JobRow.partition_id), col(JobRow.job_id))
        )
        with self._selection() as session:
            return [(p, j, JobStatus(status)) for p, j, status in session.execute(statement)]

    def status_counts(self, query: JobQuery) -> dict[JobStatus, int]:
        """How many of the jobs ``query`` selects have each status (none: left out)."""
        statement = (
            select(col(JobRow.status), func.count())
            .where(*query.where())
            .group_by(col(JobRow.status))
        )
        with self._selection() as session:
            return {JobStatus(status): n for status, n in session.execute(statement)}

    def count_all(self) -> int:
        with self.session() as session:
            return session.scalar(select(func.count()).select_from(JobRow)) or 0


def _cut_short(exc: OperationalError) -> bool:
    """Whether a statement was stopped by the selection's time limit."""
    original = exc.orig
    if getattr(original, "sqlstate", None) == _POSTGRES_CANCELLED:
        return True
    return "interrupted" in str(original)
