"""A job's row read as ``status`` reads it (SQLAlchemy Core, or ``sqlite3`` for a SQLite
file) holds what the mapped row holds, on either database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from jobservice.db.in_hand import report_in_hand
from jobservice.db.paused import count_dropped, count_held, count_released, held_pipes
from jobservice.db.rows import (
    IN_HAND_FRESH_MILLIS,
    CoreRows,
    JobRows,
    SqliteRows,
    now_millis,
    sqlite_file,
)
from jobservice.db.store import JobStore
from jobservice.execution.job import JobRecord, NewJobRow
from jobservice.jobs.job import Failure, JobCounts
from jobservice.jobs.status import JobStatus
from tests.conftest import unique

pytestmark = pytest.mark.both_databases


def test_the_core_read_of_a_row_is_the_mapped_row(job_store: JobStore) -> None:
    # Given a row with a value in every kind of column: JSON, boolean, float, text, null
    partition, job_id = unique("p"), unique("rows")
    job_store.create(
        NewJobRow(
            partition_id=partition,
            job_id=job_id,
            name="rows",
            labels={"team": "x", "tier": "1"},
            definition={"batchType": "range", "nested": {"list": [1, 2.5, None]}},
            definition_hash="h",
            prerequisite_job_ids=["before"],
            delay=3,
        )
    )
    failure = Failure(
        failure_id=f"{partition}:{job_id}.1",
        failure_time=datetime(2026, 1, 2, tzinfo=UTC),
        failure_source="noop",
        failure_message="it failed",
    )
    job_store.record(
        JobRecord(
            partition_id=partition,
            job_id=job_id,
            status=JobStatus.ACTIVE,
            status_reason="slow",
            counts=JobCounts(total=10, completed=4, failed=1, in_flight=2),
            percentage_complete=50.0,
            splitting_complete=True,
            items_per_second=12.5,
            eta_seconds=0.4,
            failures=[failure],
        )
    )

    mapped = job_store.get(partition_id=partition, job_id=job_id)
    assert mapped is not None
    for rows in readers(job_store):
        read = rows.job_row(partition_id=partition, job_id=job_id)

        # With the counts of its paused pipe, which it has none of
        assert read == {**mapped.model_dump(), "paused_held": None, "paused_dropped": None}
        assert read["splitting_complete"] is True  # not SQLite's 1
        assert read["labels"]["team"] == "x"
        assert read["failures"][0]["failureMessage"] == "it failed"
        assert rows.job_row(partition_id=partition, job_id=unique("none")) is None
        rows.check_schema()


def test_items_in_hand_add_up_each_workers_fresh_rows_of_a_job(job_store: JobStore) -> None:
    # Given two workers handling items of job A, one of job B, and a worker that said it had
    # items of A long ago and has not been heard since (it died)
    partition = unique("p")
    a, b, other = (partition, unique("a")), (partition, unique("b")), (unique("p"), unique("c"))
    now = now_millis()
    engine = job_store.engine
    report_in_hand(engine, worker_id=unique("w1"), items={a: 3, b: 1}, now=now)
    report_in_hand(engine, worker_id=unique("w2"), items={a: 2, other: 0}, now=now)
    dead = unique("dead")
    report_in_hand(engine, worker_id=dead, items={a: 100}, now=now - IN_HAND_FRESH_MILLIS - 1)

    for rows in readers(job_store):
        # Then the live workers' items count, the dead one's do not, and a job with none is
        # left out, as is one of another partition with the same id
        assert rows.items_in_hand([a, b, other]) == {a: 5, b: 1}, type(rows)
        assert rows.items_in_hand([(unique("p"), a[1])]) == {}
        assert rows.items_in_hand([]) == {}

    # When the first worker has settled everything it had, and the dead one comes back
    worker = unique("w3")
    report_in_hand(engine, worker_id=worker, items={a: 4}, now=now)
    report_in_hand(engine, worker_id=worker, items={}, now=now)
    report_in_hand(engine, worker_id=dead, items={a: 1}, now=now)
    # Then its rows are gone, and the other worker's replaced what it said before
    for rows in readers(job_store):
        assert rows.items_in_hand([a]) == {a: 6}, type(rows)


def readers(job_store: JobStore) -> list[JobRows]:
    """Each way this database's rows are read: Core, and sqlite3 for a SQLite file."""
    url = job_store.engine.url.render_as_string(hide_password=False)
    path = sqlite_file(url)
    return [CoreRows(job_store.engine), *([SqliteRows(path, url)] if path else [])]


def test_a_paused_pipes_counts_add_up_and_the_keeper_finds_it_once_the_job_goes_on(
    job_store: JobStore,
) -> None:
    partition, job_id = unique("p"), unique("held")
    key = (partition, job_id)
    job_store.create(
        NewJobRow(partition_id=partition, job_id=job_id, definition={}, definition_hash="0" * 64),
        status=JobStatus.PAUSED,
    )
    rows = CoreRows(job_store.engine)

    # Two consumers count in at once: both counts stand
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: count_held(job_store.engine, key, 5), range(8)))
    assert rows.paused_pipes([key]) == {key: (40, 0)}
    row = rows.job_row(partition_id=partition, job_id=job_id)
    assert row is not None and (row["paused_held"], row["paused_dropped"]) == (40, 0)
    assert key not in {pipe.key for pipe in held_pipes(job_store.engine)}

    job_store.set_status(partition_id=partition, job_id=job_id, status=JobStatus.CANCELLED)
    [found] = [pipe for pipe in held_pipes(job_store.engine) if pipe.key == key]
    assert (found.held, found.status) == (40, JobStatus.CANCELLED)
    count_released(job_store.engine, key, 40, dropped=38)
    count_dropped(job_store.engine, key, 2)
    assert rows.paused_pipes([key]) == {key: (0, 40)}
    row = rows.job_row(partition_id=partition, job_id=job_id)
    assert row is not None and (row["paused_held"], row["paused_dropped"]) == (0, 40)
    assert key not in {pipe.key for pipe in held_pipes(job_store.engine)}
