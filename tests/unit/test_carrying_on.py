"""Where a stopped batch stood: what it takes back, what it writes, and how its stopped
children count until they run again."""

from __future__ import annotations

from datetime import UTC, datetime

from jobservice.execution.batch import (
    BatchState,
    ControlState,
    Progress,
    SplitResult,
    StoppedChild,
    SubBatch,
)
from jobservice.execution.tracking import TrackingBatch
from jobservice.workflows.carrying_on import stopped_parts, stopped_state
from jobservice.workflows.rollup import roll_up
from tests.unit.test_tracking import all_sent, tracked


def test_items_out_without_a_result_are_taken_back_to_be_sent_again() -> None:
    # Given 20 items out in two chunks, of which items 0, 1 and 7 have a result
    items = tracked()
    now = datetime.now(UTC)
    items.forwarded(0, 10, 10, [], now)
    items.forwarded(10, 20, 9, [15], now)  # item 15 refused at once: failed, settled
    items.record(TrackingBatch(completed=[4, 5], failed=[11]), 20, sent=all_sent)

    # When the batch stops
    ranges = items.take_back()

    # Then every item out without a result is to go again, and none is awaited any longer
    assert ranges == [(2, 7), (8, 15), (16, 20)]
    assert items.all_settled and items.outstanding == 0
    assert items.next_deadline() is None
    assert items.take_back() == []


def test_a_stopped_batch_writes_its_cursors_its_items_out_and_its_running_children() -> None:
    items = tracked()
    items.forwarded(0, 4, 4, [], datetime.now(UTC))
    items.record(TrackingBatch(completed=[4]), 20, sent=all_sent)
    child = StoppedChild(
        index=3,
        sub_batch=SubBatch(definition="c", estimate=50),
        progress=Progress(total=50, completed=20, in_flight=5, failures=[]),
    )
    earlier = StoppedChild(index=1, sub_batch=SubBatch(definition="a"), progress=None)
    state = BatchState(
        split=SplitResult(sub_batches=[], sub_batch_total=3, item_total=20),
        next_item=10,
        retry_ranges=[(6, 10)],
        control=ControlState(paused=True, cancelling=True),
        failed_reported=[1],
        stopped=[earlier],
    )

    written = stopped_state(state, items, [child])

    # Items 1-3 were out without a result; 6-9 came back from a chunk: one range, merged
    assert written.retry_ranges == [(1, 4), (6, 10)]
    assert written.next_item == 10
    assert written.control == ControlState()  # it starts again neither paused nor stopping
    assert written.failed_reported == []
    assert [c.index for c in written.stopped] == [1, 3]
    stood = written.stopped[1].progress
    assert stood is not None and (stood.completed, stood.in_flight) == (20, 0)
    assert written.tracking is not None and written.tracking.awaiting == []


def test_a_child_stopped_before_it_split_counts_at_its_estimate() -> None:
    stopped = [
        StoppedChild(
            index=1,
            sub_batch=SubBatch(definition="a", estimate=300),
            progress=Progress(total=0, splitting_complete=False),
        ),
        StoppedChild(
            index=2,
            sub_batch=SubBatch(definition="b", estimate=300),
            progress=Progress(total=300, completed=120, failed=3, splitting_complete=True),
        ),
    ]
    progress = roll_up(
        Progress(total=100, completed=100),
        SplitResult(sub_batches=[], sub_batch_total=3, item_total=0),
        stopped_parts(stopped),
        [],
        chunk_items=0,
        tracked=None,
        sub_batches_started=True,
        waiting=None,
        limit=20,
    )
    assert (progress.total, progress.completed, progress.failed) == (700, 220, 3)
    assert not progress.splitting_complete


def test_a_result_of_an_item_taken_back_counts_once_however_it_comes() -> None:
    # Given 10 items out, taken back by a stop before any had a result
    items = tracked()
    items.forwarded(0, 10, 10, [], datetime.now(UTC))
    assert items.take_back() == [(0, 10)]

    # When the first sending's results of items 0 and 1 come before they go out again, and
    # then each of the ten is sent again and answered
    items.record(TrackingBatch(completed=[4]), 20, sent=all_sent)
    items.record(TrackingBatch(completed=[5]), 20, sent=all_sent)
    items.forwarded(0, 10, 10, [], datetime.now(UTC))
    assert items.outstanding == 8
    items.record(TrackingBatch(completed=list(range(4, 14))), 20, sent=all_sent)

    # Then all are settled, each counted once, and nothing is awaited
    assert items.all_settled and items.outstanding == 0
    assert items.state.settled_count == 10
