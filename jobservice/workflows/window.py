"""Which items of a batch the next chunk carries, and when.

For a local pipe a chunk carries up to the chunk size. For a queue, what is out (forwarded
and not yet reported, or in chunks on their way) stays within the batch's share of the job's
in-flight window, and the window refills in halves. A broker that cannot be reached makes the
batch wait, doubling the wait each time, before it tries again. Pure logic: the runner gives it
the time and what is out; ``state`` (the batch's cursors and the wait) is what continue-as-new
carries.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import BatchState

MAX_BROKER_BACKOFF = 60.0
HOLD_SECONDS = 1.0
"""How long a batch whose chunk found the job paused waits for the word, before it looks again."""


class DispatchWindow:
    """The chunks of one batch: what the next one carries, and what goes back to be sent again."""

    def __init__(self, state: BatchState, *, chunk_size: int, share: int | None) -> None:
        """``share``: the batch's part of the in-flight window for a queue; None: a local pipe."""
        self.state = state
        self._chunk_size = chunk_size
        self._share = share

    def reshare(self, share: int | None) -> None:
        """The batch's share of the in-flight window changed: the job's window was tuned."""
        self._share = share

    @property
    def waiting(self) -> str | None:
        """Why the batch waits, while the broker cannot be reached."""
        return self.state.window.waiting

    def room(self, now: datetime, out: int) -> int:
        """Items the next chunk may carry, with ``out`` items forwarded or in chunks now."""
        held_until = self.state.window.held_until
        if held_until is not None and now < held_until:
            return 0
        if self._share is None:
            return self._chunk_size
        retry_at = self.state.window.retry_at
        if retry_at is not None and now < retry_at:
            return 0  # the broker was unreachable; wait before trying again
        room = self._share - out
        if out and room < min(self._share // 2, self.undispatched()):
            return 0  # refill in halves: a result at a time would make chunks of a few items
        return max(0, min(self._chunk_size, room))

    def undispatched(self) -> int:
        """Items of this batch not yet sent, or to be sent again."""
        split = self.state.split
        left = split.item_total - self.state.next_item if split is not None else 0
        return left + sum(end - start for start, end in self.state.retry_ranges)

    def taken(self, index: int) -> bool:
        """Whether item ``index`` has gone out in a chunk, and has not come back to go again."""
        state = self.state
        return index < state.next_item and not any(
            start <= index < end for start, end in state.retry_ranges
        )

    def take(self, room: int) -> tuple[int, int] | None:
        """The next chunk of at most ``room`` items, items to send again first; None: none left."""
        state = self.state
        if room <= 0:
            return None
        if state.retry_ranges:
            start, end = state.retry_ranges.pop(0)
            if end - start > room:
                state.retry_ranges.insert(0, (start + room, end))
                end = start + room
            return start, end
        assert state.split is not None
        if state.next_item < state.split.item_total:
            start = state.next_item
            state.next_item = end = min(start + room, state.split.item_total)
            return start, end
        return None

    def returned(self, start: int, end: int) -> None:
        """Items ``[start, end)`` of a chunk were not delivered: they go out again later."""
        if start < end:
            self.state.retry_ranges.append((start, end))

    def delivered(self) -> None:
        """A chunk delivered items: the broker is there."""
        self.state.window.retry_at = None
        self.state.window.backoff = 1.0
        self.state.window.waiting = None

    def broker_unavailable(self, now: datetime, message: str) -> None:
        window = self.state.window
        window.waiting = f"waiting for the target pipe: {message}"
        window.retry_at = now + timedelta(seconds=window.backoff)
        window.backoff = min(window.backoff * 2, MAX_BROKER_BACKOFF)

    def hold(self, now: datetime) -> None:
        """A chunk found the job paused or ended; the signal saying so is on its way."""
        self.state.window.held_until = now + timedelta(seconds=HOLD_SECONDS)

    def release(self) -> None:
        """The batch was told to go on."""
        self.state.window.held_until = None

    def wake_at(self, now: datetime) -> datetime | None:
        """When the batch must look again, after ``now``: the broker's wait is over with items
        to send again, or a hold is over with items to send."""
        window = self.state.window
        times = []
        if window.retry_at is not None and self.state.retry_ranges:
            times.append(window.retry_at)
        if window.held_until is not None and self.undispatched():
            times.append(window.held_until)
        return min((time for time in times if time > now), default=None)
