"""The items of one batch that went to a queue: which have a final result, which are overdue,
and how far the others are.

A bitmap over the batch's items makes accounting exactly once: a second result for an item,
from a redelivery or a duplicate report, finds its bit set and changes nothing. What workers
say of an item in flight (its percentage, its retries) is kept only while it is in flight, so
it never holds more than the in-flight window; the sum of those percentages rolls up the tree
like the counts. Pure logic: the runner gives it the time. Beside it, :func:`name_items`
names the numbers of those items in the workflow's memo, for the tracking consumer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import BatchState, JobContext, SplitResult
    from jobservice.execution.names import ITEMS_MEMO
    from jobservice.execution.tracking import TrackingBatch, TrackingState
    from jobservice.jobs.job import Failure
    from jobservice.jobs.pipes import is_local_pipe
    from jobservice.jobs.taskids import item_index, item_number, split_item
    from jobservice.workflows.rollup import TrackedCounts


@dataclass
class Settled:
    """What a step of tracking settled: counts and the first failure details."""

    completed: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    reported: list[int] = field(default_factory=list)
    """Indexes of the items that failed on a worker's report."""
    expired: list[int] = field(default_factory=list)
    """Indexes of the items that failed for want of a result in time."""
    redriven: list[int] = field(default_factory=list)
    """In a redrive: indexes of the items that completed."""


class TrackedItems:
    """Bookkeeping of a batch's forwarded items; ``state`` is what continue-as-new carries."""

    def __init__(
        self,
        state: TrackingState,
        *,
        context: JobContext,
        path: list[int],
        item_total: int,
        sub_batch_total: int,
    ) -> None:
        self.state = state
        self._context = context
        self._path = path
        self._item_total = item_total
        self._sub_batch_total = sub_batch_total
        self._bits = bytearray(state.settled) or bytearray((item_total + 7) // 8)
        self._percent_sum = sum(percent for percent, _ in state.reported.values())

    def snapshot(self) -> TrackingState:
        return self.state.model_copy(update={"settled": bytes(self._bits)})

    def _settle(self, index: int) -> bool:
        byte, bit = divmod(index, 8)
        if self._bits[byte] >> bit & 1:
            return False
        self._bits[byte] |= 1 << bit
        self.state.settled_count += 1
        reported = self.state.reported.pop(index, None)
        if reported is not None:
            self._percent_sum -= reported[0]
        return True

    def is_settled(self, index: int) -> bool:
        byte, bit = divmod(index, 8)
        return bool(self._bits[byte] >> bit & 1)

    @property
    def outstanding(self) -> int:
        """Items forwarded and not yet settled."""
        state = self.state
        return max(0, state.forwarded + state.refused - state.settled_count)

    @property
    def in_flight_percent(self) -> int:
        """The sum of the percentages last reported for the items in flight."""
        return self._percent_sum

    def counts(self) -> TrackedCounts:
        """What these items add to the batch's rolled-up progress."""
        return TrackedCounts(self.outstanding, self.in_flight_percent, self.state.retries)

    @property
    def all_settled(self) -> bool:
        return self.state.settled_count >= self.state.forwarded + self.state.refused

    def forwarded(
        self, start: int, end: int, count: int, refused: list[int], now: datetime
    ) -> None:
        """Items ``[start, end)`` went out: ``count`` to the queue, ``refused`` failed first."""
        self.state.forwarded += count
        self.state.refused += len(refused)
        for index in refused:
            self._settle(index)
        timeout = timedelta(seconds=self._context.engine.result_timeout_seconds)
        if count:
            self.state.awaiting.append((start, end, now + timeout))

    def record(self, batch: TrackingBatch, limit: int, *, sent: Callable[[int], bool]) -> Settled:
        """Results from the tracking pipe; a duplicate or a number outside the batch is ignored,
        and so are the details of a failure that was already counted. Progress and retries
        count for items ``sent`` says have gone out and that have no result yet; they come
        first, as the consumer passes on nothing of an item that it heard after its result."""
        self._progress(batch, sent)
        completed, failed, failures = batch.numbers()
        settled = Settled()
        if self._context.sends_failed_items:  # a redrive writes what became of each item
            settled.redriven = [
                item_index(self._sub_batch_total, number)
                for number in completed
                if self._settle_number(number)
            ]
            settled.completed = len(settled.redriven)
        else:
            settled.completed = sum(map(self._settle_number, completed))
        newly_failed = {number for number in failed if self._settle_number(number)}
        settled.failed = len(newly_failed)
        settled.reported = [
            item_index(self._sub_batch_total, number) for number in sorted(newly_failed)
        ]
        for number, failure in failures:
            if len(settled.failures) >= limit:
                break
            if number is None:
                item = split_item(failure.failure_id)
                number = item[1] if item is not None else None
            if number in newly_failed:
                settled.failures.append(failure)
        return settled

    def _progress(self, batch: TrackingBatch, sent: Callable[[int], bool]) -> None:
        reported = self.state.reported
        for number, percent in batch.progressed:
            index = item_index(self._sub_batch_total, number)
            if self._in_flight(index, sent):
                before, retries = reported.get(index, (0, 0))
                reported[index] = (percent, retries)
                self._percent_sum += percent - before
        for number, attempt in batch.retried:
            index = item_index(self._sub_batch_total, number)
            if not self._in_flight(index, sent):
                continue
            percent, retries = reported.get(index, (0, 0))
            # The n-th retry counts once, however often it is reported or delivered; one that
            # gives no number (or 0, the reference framework's first) is the first.
            attempt = max(attempt or 0, 1)
            if attempt > retries:
                self.state.retries += attempt - retries
                reported[index] = (percent, attempt)

    def _in_flight(self, index: int, sent: Callable[[int], bool]) -> bool:
        return 0 <= index < self._item_total and not self.is_settled(index) and sent(index)

    def _settle_number(self, number: int) -> bool:
        index = item_index(self._sub_batch_total, number)
        return 0 <= index < self._item_total and self._settle(index)

    def _item_task_id(self, index: int) -> str:
        return self._context.task_id(self._path, item_number(self._sub_batch_total, index))

    def take_back(self) -> list[tuple[int, int]]:
        """Items out without a result, as ranges: no longer awaited, to be sent again. What
        a stopping batch leaves for a redrive to carry on with."""
        out = {
            index
            for start, end, _ in self.state.awaiting
            for index in range(start, end)
            if not self.is_settled(index)
        }
        ranges: list[tuple[int, int]] = []
        for index in sorted(out):
            if ranges and ranges[-1][1] == index:
                ranges[-1] = (ranges[-1][0], index + 1)
            else:
                ranges.append((index, index + 1))
        self.state.forwarded -= sum(end - start for start, end in ranges)
        self.state.awaiting = []
        self.state.reported = {}
        self._percent_sum = 0
        return ranges

    def next_deadline(self) -> datetime | None:
        return min((deadline for _, _, deadline in self.state.awaiting), default=None)

    def expire(self, now: datetime, limit: int) -> Settled:
        """Fail every forwarded item still without a result after the result timeout."""
        settled = Settled()
        seconds = self._context.engine.result_timeout_seconds
        keep: list[tuple[int, int, datetime]] = []
        for start, end, deadline in self.state.awaiting:
            if deadline > now:
                keep.append((start, end, deadline))
                continue
            for index in range(start, end):
                if not self._settle(index):
                    continue
                settled.failed += 1
                settled.expired.append(index)
                if len(settled.failures) < limit:
                    settled.failures.append(
                        Failure(
                            failure_id=self._item_task_id(index),
                            failure_time=now,
                            failure_source=f"target pipe {self._context.target_pipe!r}",
                            failure_message=f"no result for the item within {seconds:g} s",
                        )
                    )
        self.state.awaiting = keep
        return settled


def tracked_items(context: JobContext, path: list[int], state: BatchState) -> TrackedItems | None:
    """The tracking of a batch's items once it has split, for a queue (named in the memo,
    for the tracking consumer); None for a local pipe, or before the batch has split."""
    split = state.split
    if split is None:
        return None
    name_items(context, split)
    if is_local_pipe(context.target_pipe):
        return None
    return TrackedItems(
        state.tracking or TrackingState(),
        context=context,
        path=path,
        item_total=split.item_total,
        sub_batch_total=split.sub_batch_total,
    )


def name_items(context: JobContext, split: SplitResult) -> None:
    """Name in the workflow's memo the numbers of the items this batch sends to a queue
    (none, for a local pipe), so that the tracking consumer can tell a result for an item
    that never went out. Batches started before it was named run without."""
    if workflow.memo_value(ITEMS_MEMO, None) is not None or not workflow.patched(ITEMS_MEMO):
        return
    workflow.upsert_memo(items_memo(context, split))


def items_memo(context: JobContext, split: SplitResult) -> dict[str, list[int]]:
    """The memo naming the numbers, first and last, of the items a batch sends to a queue."""
    count = 0 if is_local_pipe(context.target_pipe) else split.item_total
    first = item_number(split.sub_batch_total, 0)
    last = item_number(split.sub_batch_total, count - 1)  # below first when there are none
    return {ITEMS_MEMO: [first, last]}
