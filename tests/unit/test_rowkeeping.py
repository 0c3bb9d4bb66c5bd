"""What the job's row says, from the job's state and the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobservice.execution.batch import Progress
from jobservice.jobs.job import Failure
from jobservice.jobs.status import JobStatus
from jobservice.workflows.rowkeeping import JobRowKeeping

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def keeping(**fields: object) -> JobRowKeeping:
    return JobRowKeeping(partition="p", job_id="j", failure_details=2, started_at=T0, **fields)  # type: ignore[arg-type]


def failure(n: int) -> Failure:
    return Failure(failure_id=f"f{n}", failure_time=T0, failure_source="s", failure_message="m")


def test_an_active_job_has_its_counts_percentage_rate_and_time_left() -> None:
    progress = Progress(total=1000, completed=200, failed=50, in_flight=10, in_flight_percent=500)

    record = keeping().record(JobStatus.ACTIVE, progress, waiting_reason=None, now=at(10))

    assert (record.counts.total, record.counts.completed, record.counts.failed) == (1000, 200, 50)
    assert record.counts.in_flight == 10
    # 250 done and 10 items half way: (25,000 + 500) // 1000
    assert record.percentage_complete == 25.0
    assert record.items_per_second == 25.0
    assert record.eta_seconds == 30.0


def test_only_a_completed_job_reads_100_percent() -> None:
    progress = Progress(total=10, completed=10)

    active = keeping().record(JobStatus.ACTIVE, progress, waiting_reason=None, now=at(1))
    completed = keeping().record(JobStatus.COMPLETED, progress, waiting_reason=None, now=at(1))

    assert (active.percentage_complete, completed.percentage_complete) == (99.0, 100.0)


def test_time_paused_is_not_time_the_job_ran_and_a_held_job_has_no_time_left() -> None:
    row = keeping(paused_seconds=5.0, paused_at=at(15))
    progress = Progress(total=100, completed=50)

    record = row.record(JobStatus.PAUSED, progress, waiting_reason=None, now=at(60))

    # active from 0 to the pause at 15, less 5 s paused before: 10 s for 50 items
    assert record.items_per_second == 5.0
    assert record.eta_seconds is None
    assert row.paused_total(at(60)) == 5.0 + 45.0


def test_a_waiting_job_says_why_and_a_finished_one_says_nothing() -> None:
    progress = Progress(total=10, waiting="RabbitMQ cannot be reached")

    waiting = keeping().record(JobStatus.WAITING, progress, waiting_reason="delayed", now=at(1))
    broker = keeping().record(JobStatus.ACTIVE, progress, waiting_reason=None, now=at(1))
    done = keeping().record(JobStatus.CANCELLED, progress, waiting_reason="x", now=at(1))

    assert waiting.status_reason == "delayed"
    assert broker.status_reason == "RabbitMQ cannot be reached"
    assert done.status_reason is None


def test_the_job_s_own_failures_come_first_up_to_the_limit() -> None:
    row = keeping(failures=[failure(1)])
    progress = Progress(failed=2, failures=[failure(2), failure(3)])

    assert [f.failure_id for f in row.snapshot(JobStatus.FAILED, progress).failures] == ["f1", "f2"]


def test_a_change_of_rate_alone_is_no_change() -> None:
    row = keeping()
    progress = Progress(total=100, completed=50)
    first = row.record(JobStatus.ACTIVE, progress, waiting_reason=None, now=at(10))
    assert row.changed(first)
    row.wrote(first, at(10))

    later = row.record(JobStatus.ACTIVE, progress, waiting_reason=None, now=at(20))

    assert later.items_per_second != first.items_per_second
    assert not row.changed(later)
    assert row.changed(row.record(JobStatus.PAUSED, progress, waiting_reason=None, now=at(20)))


def test_a_written_resume_is_not_written_again() -> None:
    row = keeping(resumed=True)
    record = row.record(JobStatus.ACTIVE, Progress(), waiting_reason=None, now=at(1))
    assert record.resumed

    row.wrote(record, at(1))

    assert row.resumed is False
    assert row.new_row is None
    assert not row.record(JobStatus.ACTIVE, Progress(), waiting_reason=None, now=at(2)).resumed


def test_the_recent_rate_is_of_the_last_ten_seconds() -> None:
    # Given a job that did 100 items a second for 20 s, then 10 a second
    row = keeping()
    done = 0
    for second in range(0, 31):
        done += 100 if second <= 20 else 10
        record = row.record(
            JobStatus.ACTIVE,
            Progress(total=10**6, completed=done),
            waiting_reason=None,
            now=at(second),
        )
        row.wrote(record, at(second))

    # Then its recent rate is of the last ten seconds, its rate of the whole run
    assert record.recent_items_per_second == 10.0
    assert record.items_per_second is not None and record.items_per_second > 60


def test_a_paused_or_ended_job_has_no_recent_rate() -> None:
    row = keeping()
    for second in range(5):
        row.wrote(
            row.record(
                JobStatus.ACTIVE,
                Progress(total=100, completed=second * 10),
                waiting_reason=None,
                now=at(second),
            ),
            at(second),
        )

    paused = row.record(
        JobStatus.PAUSED, Progress(total=100, completed=40), waiting_reason=None, now=at(5)
    )

    assert paused.recent_items_per_second is None
    ended = row.record(
        JobStatus.COMPLETED, Progress(total=100, completed=100), waiting_reason=None, now=at(5)
    )
    assert ended.recent_items_per_second is None
