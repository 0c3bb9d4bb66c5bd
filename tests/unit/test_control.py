"""A batch's control state and dispatch window, without Temporal: every interleaving of a
signal, a child's start and a chunk's completion leaves nothing started after a pause or a
cancel, and every child told what its batch is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from jobservice.execution.batch import BatchState, ControlState, SplitResult
from jobservice.workflows.control import BatchControl, Command, Steps
from jobservice.workflows.window import HOLD_SECONDS, MAX_BROKER_BACKOFF, DispatchWindow

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class Child:
    """A child batch as it would be: started paused or not, then told."""

    paused: bool
    cancelled: bool = False


class Batch:
    """Drives a BatchControl as the runner does, and keeps what a real tree would be."""

    def __init__(self) -> None:
        self.control = BatchControl(ControlState())
        self.children: dict[int, Child] = {}
        self.started: set[int] = set()
        self.chunks_out = 0
        self.chunks_stopped = 0

    def carry_out(self, steps: Steps) -> None:
        if steps.stop_chunks:
            self.chunks_stopped += self.chunks_out
        for index, command in steps.children.items():
            child = self.children[index]
            if command is Command.CANCEL:
                child.cancelled = True  # cancelling the task cancels the start too
            else:
                assert index in self.started, "only a started child can be signalled"
                child.paused = command is Command.PAUSE

    def try_to_start(self) -> None:
        """What the runner's loop does when it wakes: start work only if it may."""
        if not self.control.may_start():
            with pytest.raises(RuntimeError):
                self.control.child_starting(len(self.children) + 1)
            return
        index = len(self.children) + 1
        self.children[index] = Child(paused=self.control.child_starting(index))
        self.chunks_out += 1

    def event(self, name: str, index: int = 1) -> None:
        if name == "pause":
            self.carry_out(self.control.pause())
        elif name == "resume":
            self.carry_out(self.control.resume())
        elif name == "cancel":
            self.carry_out(self.control.cancel())
        elif name == "child started":
            self.started.add(index)
            command = self.control.child_started(index)
            if command is not None:
                self.carry_out(Steps(children={index: command}))
        elif name == "chunk completed":
            self.chunks_out = max(0, self.chunks_out - 1)
        else:  # pragma: no cover
            raise AssertionError(name)


EVENTS = ["pause", "resume", "cancel", "child started", "chunk completed"]
ORDERS = [
    order
    for order in permutations(EVENTS)
    if "resume" not in order or order.index("pause") < order.index("resume")
] + [order for order in permutations(["pause", "child started", "chunk completed"])]


@pytest.mark.parametrize("order", ORDERS, ids=" then ".join)
def test_nothing_starts_after_a_pause_or_a_cancel_and_every_child_is_told(
    order: tuple[str, ...],
) -> None:
    # Given a batch whose first child is on its way and a chunk out
    batch = Batch()
    batch.try_to_start()
    control = batch.control
    for name in order:
        # When the events come in this order, the loop waking after each
        stopping = name in ("pause", "cancel") and control.may_start()
        out, children = batch.chunks_out, len(batch.children)
        batch.event(name)
        # Then a pause or a cancel stops the chunks that are out
        if stopping:
            assert batch.chunks_stopped >= out
        batch.try_to_start()
        # and after a pause (not yet resumed) or a cancel, nothing new starts
        if control.paused or control.cancelling:
            assert not control.may_start()
            assert len(batch.children) == children
    # and every child ends up told what its batch is
    for index, child in batch.children.items():
        if control.cancelling:
            assert child.cancelled, f"child {index} was never cancelled"
        elif index in batch.started:
            assert child.paused == control.paused, f"child {index} was not told"


def test_a_child_started_while_the_batch_was_paused_is_resumed_once_it_has_started() -> None:
    batch = Batch()
    batch.try_to_start()
    batch.event("pause")
    batch.event("resume")
    batch.event("child started")
    # paused and resumed again before it started: it started running and needs no word
    assert batch.children[1] == Child(paused=False)


def test_a_cancelled_batch_ignores_pause_and_resume() -> None:
    control = BatchControl(ControlState())
    control.cancel()
    assert control.pause() == Steps()
    assert control.resume() == Steps()
    assert control.cancelling and not control.may_start()


def test_cancel_stops_chunks_once_and_cancels_each_child_once() -> None:
    control = BatchControl(ControlState())
    control.child_starting(1)
    control.child_started(1)
    control.child_starting(2)
    first = control.cancel()
    assert first == Steps(stop_chunks=True, children={1: Command.CANCEL, 2: Command.CANCEL})
    assert control.cancel() == Steps()
    assert control.child_started(2) is None  # its start was cancelled with its task


def test_the_control_state_is_what_continue_as_new_carries() -> None:
    state = BatchState()
    BatchControl(state.control).pause()
    carried = BatchState.model_validate(state.model_dump(mode="json"))
    assert BatchControl(carried.control).paused


# -- the dispatch window -----------------------------------------------------------------


def window(items: int = 10_000, *, share: int | None = None, chunk: int = 500) -> DispatchWindow:
    state = BatchState(split=SplitResult(sub_batches=[], sub_batch_total=0, item_total=items))
    return DispatchWindow(state, chunk_size=chunk, share=share)


def test_a_local_pipe_takes_chunks_of_the_chunk_size_until_the_batch_is_out() -> None:
    local = window(1200)
    chunks = []
    while (span := local.take(local.room(NOW, out=0))) is not None:
        chunks.append(span)
    assert chunks == [(0, 500), (500, 1000), (1000, 1200)]
    assert local.undispatched() == 0


def test_items_sent_back_go_out_again_first() -> None:
    local = window(2000)
    assert local.take(500) == (0, 500)
    local.returned(200, 500)
    assert local.take(200) == (200, 400)
    assert local.take(500) == (400, 500)
    assert local.take(500) == (500, 1000)
    local.returned(700, 700)  # nothing to send again
    assert local.state.retry_ranges == []


def test_a_queue_stays_within_its_share_and_refills_in_halves() -> None:
    queue = window(share=1000, chunk=600)
    assert queue.room(NOW, out=0) == 600
    assert queue.room(NOW, out=600) == 0  # 400 free is less than half the share
    assert queue.room(NOW, out=500) == 500
    assert queue.room(NOW, out=200) == 600
    assert queue.room(NOW, out=1000) == 0


def test_the_last_items_of_a_queue_batch_go_out_without_waiting_for_half() -> None:
    queue = window(items=1100, share=1000, chunk=1000)
    assert queue.take(queue.room(NOW, out=0)) == (0, 1000)
    # 100 left, 200 free: less than half the share, but all there is to send
    assert queue.room(NOW, out=800) == 200


def test_an_unreachable_broker_backs_off_doubling_and_a_delivery_ends_the_wait() -> None:
    queue = window(share=1000)
    queue.take(500)
    queue.returned(0, 500)
    waits = []
    for _ in range(8):
        queue.broker_unavailable(NOW, "connection refused")
        retry_at = queue.wake_at(NOW)
        assert retry_at is not None
        waits.append((retry_at - NOW).total_seconds())
        assert queue.room(NOW, out=0) == 0
        assert queue.room(retry_at, out=0) == 500
    assert waits == [1, 2, 4, 8, 16, 32, MAX_BROKER_BACKOFF, MAX_BROKER_BACKOFF]
    assert queue.waiting == "waiting for the target pipe: connection refused"
    queue.delivered()
    assert queue.waiting is None and queue.room(NOW, out=0) == 500
    queue.broker_unavailable(NOW, "again")
    assert queue.wake_at(NOW) == NOW + timedelta(seconds=1)
    assert queue.wake_at(NOW + timedelta(seconds=1)) is None  # due: nothing to wait for


def test_the_wait_for_the_broker_survives_continue_as_new() -> None:
    queue = window(share=1000)
    queue.take(500)
    queue.returned(0, 500)
    queue.broker_unavailable(NOW, "down")
    queue.broker_unavailable(NOW, "down")
    carried = BatchState.model_validate(queue.state.model_dump(mode="json"))
    again = DispatchWindow(carried, chunk_size=500, share=1000)
    assert again.wake_at(NOW) == NOW + timedelta(seconds=2)
    assert again.room(NOW + timedelta(seconds=1), out=0) == 0
    again.broker_unavailable(NOW, "down")
    assert again.wake_at(NOW) == NOW + timedelta(seconds=4)


def test_a_chunk_that_found_the_job_paused_holds_the_batch_until_told_or_a_moment_passed() -> None:
    local = window()
    local.take(500)
    local.hold(NOW)
    assert local.room(NOW, out=0) == 0
    assert local.wake_at(NOW) == NOW + timedelta(seconds=HOLD_SECONDS)
    assert local.room(NOW + timedelta(seconds=HOLD_SECONDS), out=0) == 500
    local.hold(NOW)
    local.release()  # resumed
    assert local.room(NOW, out=0) == 500 and local.wake_at(NOW) is None
