"""A batch's rolled-up counts: its own, its children's last reports, what is in flight."""

from __future__ import annotations

from datetime import UTC, datetime

from jobservice.execution.batch import Progress, SplitResult, SubBatch
from jobservice.jobs.job import Failure
from jobservice.workflows.rollup import TrackedCounts, add_finished, roll_up


def failure(n: int) -> Failure:
    return Failure(
        failure_id=f"f{n}",
        failure_time=datetime(2026, 1, 1, tzinfo=UTC),
        failure_source="test",
        failure_message=f"item {n} failed",
    )


def split(items: int = 0, estimate: int | None = None) -> SplitResult:
    return SplitResult(sub_batches=[], sub_batch_total=3, item_total=items, estimate=estimate)


def up(
    finished: Progress | None = None,
    children: list[tuple[SubBatch, Progress | None]] | None = None,
    pending: list[SubBatch] | None = None,
    *,
    of: SplitResult | None = None,
    chunk_items: int = 0,
    tracked: TrackedCounts | None = None,
    sub_batches_started: bool = True,
    waiting: str | None = None,
    limit: int = 3,
) -> Progress:
    """The roll-up of a batch of 10 items of its own, unless ``of`` says otherwise."""
    return roll_up(
        finished or Progress(),
        of or split(items=10),
        children or [],
        pending or [],
        chunk_items=chunk_items,
        tracked=tracked,
        sub_batches_started=sub_batches_started,
        waiting=waiting,
        limit=limit,
    )


def test_finished_counts_and_children_reports_add_up() -> None:
    finished = Progress(total=5, completed=4, failed=1)
    child = (SubBatch(definition="a", estimate=100), Progress(total=100, completed=30, failed=2))

    rolled = up(finished, [child])

    # the batch's own 10 items, 5 of them finished, and the child's 100
    assert (rolled.total, rolled.completed, rolled.failed) == (115, 34, 3)


def test_a_child_not_heard_from_counts_its_estimate_and_splitting_is_not_complete() -> None:
    silent = (SubBatch(definition="b", estimate=40), None)

    rolled = up(children=[silent], pending=[SubBatch(definition="c", estimate=7)])

    assert rolled.total == 10 + 40 + 7
    assert rolled.splitting_complete is False


def test_in_flight_is_what_chunks_hold_or_queues_owe_and_what_children_report() -> None:
    child = (SubBatch(definition="a"), Progress(total=50, in_flight=6, in_flight_percent=120))

    rolled = up(
        children=[child],
        chunk_items=20,
        tracked=TrackedCounts(outstanding=4, percent=200, retries=2),
    )

    assert rolled.in_flight == 20 + 4 + 6
    assert rolled.in_flight_percent == 320
    assert rolled.retries == 2


def test_failures_are_kept_up_to_the_limit_own_first() -> None:
    finished = Progress(failed=2, failures=[failure(1), failure(2)])
    child = (SubBatch(definition="a"), Progress(failed=2, failures=[failure(3), failure(4)]))

    rolled = up(finished, [child], limit=3)

    assert [f.failure_id for f in rolled.failures] == ["f1", "f2", "f3"]


def test_an_estimate_stands_until_splitting_is_complete_and_total_covers_what_is_done() -> None:
    assert up(of=split(items=10, estimate=500), sub_batches_started=False).total == 500
    assert up(of=split(items=10, estimate=500)).total == 10
    # 30 done beyond the 10 known (a count that arrived first) make a total of 30
    assert up(Progress(completed=30)).total == 30


def test_a_child_that_waits_says_why() -> None:
    child = (SubBatch(definition="a"), Progress(waiting="RabbitMQ cannot be reached"))

    assert up(children=[child]).waiting == "RabbitMQ cannot be reached"
    assert up(children=[child], waiting="own reason").waiting == "own reason"


def test_finished_progress_adds_and_keeps_failures_to_the_limit() -> None:
    before = Progress(total=1, completed=1, retries=1, failures=[failure(1)])
    done = Progress(total=2, completed=1, failed=1, retries=2, failures=[failure(2), failure(3)])

    added = add_finished(before, done, limit=2)

    assert (added.total, added.completed, added.failed, added.retries) == (3, 2, 1, 3)
    assert [f.failure_id for f in added.failures] == ["f1", "f2"]
