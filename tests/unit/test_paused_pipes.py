"""The paused pipe's name, what a job's status makes of its results, and the counts the job
database keeps of each paused pipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobservice.db.engine import create_database_engine
from jobservice.db.paused import count_dropped, count_held, count_released, held_pipes, pipe_gone
from jobservice.db.rows import CoreRows, SqliteRows
from jobservice.db.schema import upgrade
from jobservice.db.store import JobStore
from jobservice.execution.job import NewJobRow
from jobservice.jobs.pipes import QUEUE_NAME_BYTES, is_queue_name, paused_pipe
from jobservice.jobs.status import JobStatus
from jobservice.tracking.holding import Fate, fate_of

JOB = ("p", "j")


def store_at(tmp_path: Path) -> JobStore:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade(engine)
    return JobStore(engine)


def new_job(store: JobStore, job_id: str, status: JobStatus) -> None:
    store.create(
        NewJobRow(
            partition_id="p",
            job_id=job_id,
            definition={"task": {}},
            definition_hash="0" * 64,
        ),
        status=status,
    )


def test_a_paused_pipe_is_named_for_the_tracking_pipe_partition_and_job() -> None:
    assert paused_pipe("jobservice-tracking", "p1", "job-7") == (
        "jobservice-tracking-paused.p1.job-7"
    )


def test_a_paused_pipe_name_too_long_for_rabbitmq_keeps_its_prefix_and_is_still_one_jobs() -> None:
    partition, job = "ü" * 40, "€" * 48  # 80 + 144 bytes
    name = paused_pipe("jobservice-tracking", partition, job)
    other = paused_pipe("jobservice-tracking", partition, "€" * 47 + "x")

    assert name.startswith("jobservice-tracking-paused.")
    assert len(name.encode()) <= QUEUE_NAME_BYTES and is_queue_name(name)
    assert name != other


@pytest.mark.parametrize(
    ("status", "fate"),
    [
        (JobStatus.ACTIVE, Fate.FORWARD),
        (JobStatus.WAITING, Fate.FORWARD),
        (JobStatus.PAUSED, Fate.HOLD),
        (JobStatus.CANCELLED, Fate.DROP),
        (JobStatus.FAILED, Fate.DROP),
        (JobStatus.COMPLETED, Fate.FORWARD),
        (None, Fate.DROP),
    ],
)
def test_a_jobs_status_says_whether_its_results_go_on_wait_or_are_dropped(
    status: JobStatus | None, fate: Fate
) -> None:
    assert fate_of(status) is fate


def test_held_results_are_counted_in_and_out_and_the_keeper_sees_them_once_the_job_goes_on(
    tmp_path: Path,
) -> None:
    store = store_at(tmp_path)
    new_job(store, "j", JobStatus.PAUSED)
    rows = CoreRows(store.engine)

    count_held(store.engine, JOB, 3)
    count_held(store.engine, JOB, 2)
    # While the job is paused, its pipe is shown and left alone
    assert rows.paused_pipes([JOB]) == {JOB: (5, 0)}
    assert held_pipes(store.engine) == []

    # Once it is resumed, the keeper finds it, and counts out what it passes on
    store.set_status(partition_id="p", job_id="j", status=JobStatus.ACTIVE)
    [found] = held_pipes(store.engine)
    assert (found.key, found.held, found.status) == (JOB, 5, JobStatus.ACTIVE)
    count_released(store.engine, JOB, 4)
    assert rows.paused_pipes([JOB]) == {JOB: (1, 0)}

    # A pipe gone clears the count only if nobody counted more in meanwhile
    count_held(store.engine, JOB, 1)
    assert not pipe_gone(store.engine, JOB, held=1)
    assert pipe_gone(store.engine, JOB, held=2)
    assert held_pipes(store.engine) == []
    assert rows.paused_pipes([JOB]) == {}
    store.engine.dispose()


def test_dropped_results_stay_counted_and_a_deleted_jobs_pipe_is_found_until_it_is_gone(
    tmp_path: Path,
) -> None:
    store = store_at(tmp_path)
    new_job(store, "j", JobStatus.PAUSED)
    new_job(store, "k", JobStatus.PAUSED)
    rows = SqliteRows(str(tmp_path / "jobs.db"), "sqlite:///jobs.db")

    # A cancelled job's held results are dropped, and so are those that come later
    count_held(store.engine, JOB, 4)
    store.set_status(partition_id="p", job_id="j", status=JobStatus.CANCELLED)
    count_released(store.engine, JOB, 4, dropped=4)
    count_dropped(store.engine, JOB, 2)
    assert rows.paused_pipes([JOB, ("p", "k")]) == {JOB: (0, 6)}

    # A deleted job whose pipe holds results leaves its count for the keeper, who removes it
    count_held(store.engine, ("p", "k"), 3)
    assert store.delete(partition_id="p", job_id="k")
    [found] = held_pipes(store.engine)
    assert (found.key, found.status) == (("p", "k"), None)
    assert pipe_gone(store.engine, ("p", "k"), held=3, job_deleted=True)
    assert held_pipes(store.engine) == []

    # A deleted job with nothing held takes its counts with it
    assert store.delete(partition_id="p", job_id="j")
    assert rows.paused_pipes([JOB]) == {}
    store.engine.dispose()
