"""The local pipe's handler calls: a time limit per call, a stop that does not wait for a stuck
call, and a bound on the calls a worker leaves behind."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping

import pytest

from jobservice.activities import handler_threads
from jobservice.activities.handler_threads import STOP_GRACE_SECONDS, HandlerThreads
from jobservice.activities.pipes import LocalPipe
from jobservice.messages import TaskMessage
from jobservice.plugin import ItemHandler


class Blocking(ItemHandler):
    """Handles integer items; the items in ``blocked`` wait for :attr:`released`, and set
    :attr:`entered` first; the ones in ``failing`` raise."""

    def __init__(self, blocked: set[int], failing: frozenset[int] = frozenset()) -> None:
        self.blocked = blocked
        self.failing = failing
        self.released = threading.Event()
        self.entered = threading.Event()
        self.handled: list[int] = []
        self.threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        item = int(message.task_data)
        with self._lock:
            self.threads.add(threading.current_thread())
        if item in self.blocked:
            self.entered.set()
            self.released.wait(30)
        with self._lock:
            self.handled.append(item)
        if item in self.failing:
            raise ValueError(f"item {item} is bad")


async def eventually(condition: Callable[[], bool], within: float = 10) -> None:
    """Wait until ``condition`` holds, rather than a fixed time a loaded machine may overrun."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not so within {within} s"
        await asyncio.sleep(0.01)


def messages(count: int) -> list[TaskMessage]:
    return [
        TaskMessage(
            job_task_id=f"p:j.{n + 1}",
            task_classifier="t",
            task_api_version=1,
            task_data=n,
            to="local:blocking",
            correlation_id="p:j",
        )
        for n in range(count)
    ]


@pytest.fixture
def handlers() -> Iterator[list[Blocking]]:
    """Handlers a test makes; the calls they leave stuck are released when it ends."""
    made: list[Blocking] = []
    yield made
    for handler in made:
        handler.released.set()


def blocking(
    handlers: list[Blocking], blocked: set[int], failing: frozenset[int] = frozenset()
) -> Blocking:
    handler = Blocking(blocked, failing)
    handlers.append(handler)
    return handler


async def test_a_call_over_its_time_limit_fails_its_item_and_the_slice_goes_on(
    handlers: list[Blocking],
) -> None:
    handler = blocking(handlers, blocked={2}, failing=frozenset({5}))
    threads = HandlerThreads(stuck_limit=8)
    pipe = LocalPipe("blocking", handler, threads, time_limit=1)

    started = time.monotonic()
    delivery = await pipe.deliver(messages(8), {}, failure_limit=10)

    assert time.monotonic() - started < 10
    assert (delivery.completed, delivery.failed, delivery.undone) == (6, 2, 0)
    assert [f.failure_id for f in delivery.failures] == ["p:j.3", "p:j.6"]
    assert delivery.failures[0].failure_message.startswith(
        "item handler local:blocking took longer than 1 s"
    )
    assert delivery.failures[1].failure_message == "ValueError: item 5 is bad"
    assert sorted(handler.handled) == [0, 1, 3, 4, 5, 6, 7]
    assert threads.stuck == 1
    assert all(thread.daemon for thread in handler.threads)

    # When the stuck call returns at last, its item is not counted again and its thread
    # takes no more of the slice; it serves the next one
    handler.released.set()
    await eventually(lambda: threads.stuck == 0)
    assert sorted(handler.handled) == [0, 1, 2, 3, 4, 5, 6, 7]
    again = await pipe.deliver(messages(3), {}, failure_limit=10)
    assert (again.completed, again.failed) == (3, 0)


async def test_a_stop_returns_without_waiting_for_a_stuck_call_and_leaves_its_item_undone(
    handlers: list[Blocking],
) -> None:
    handler = blocking(handlers, blocked={3})
    threads = HandlerThreads(stuck_limit=8)
    pipe = LocalPipe("blocking", handler, threads, time_limit=600)
    stop = asyncio.Event()

    delivering = asyncio.ensure_future(pipe.deliver(messages(10), {}, 10, stop))
    await eventually(handler.entered.is_set)
    started = time.monotonic()
    stop.set()
    delivery = await asyncio.wait_for(delivering, 5)

    assert time.monotonic() - started < STOP_GRACE_SECONDS + 2
    assert (delivery.completed, delivery.failed, delivery.undone) == (3, 0, 7)
    assert threads.stuck == 1


async def test_a_stop_lets_the_call_in_hand_finish_and_counts_it(
    handlers: list[Blocking], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A grace with margin: the released call returns within it however loaded the machine
    monkeypatch.setattr(handler_threads, "STOP_GRACE_SECONDS", 10.0)
    handler = blocking(handlers, blocked={3})
    pipe = LocalPipe("blocking", handler, HandlerThreads(stuck_limit=8), time_limit=600)
    stop = asyncio.Event()

    delivering = asyncio.ensure_future(pipe.deliver(messages(10), {}, 10, stop))
    await eventually(handler.entered.is_set)
    stop.set()
    handler.released.set()  # the call in hand returns within the stop's grace
    delivery = await asyncio.wait_for(delivering, 15)

    assert delivery.completed + delivery.undone == 10
    assert delivery.completed >= 4
    assert handler.handled == list(range(delivery.completed))


async def test_past_the_bound_a_handler_with_stuck_calls_fails_items_at_once(
    handlers: list[Blocking],
) -> None:
    stuck_handler = blocking(handlers, blocked=set(range(100)))
    other = blocking(handlers, blocked=set())
    threads = HandlerThreads(stuck_limit=2)
    stuck_pipe = LocalPipe("stuck", stuck_handler, threads, time_limit=0.2)
    other_pipe = LocalPipe("other", other, threads, time_limit=10)

    delivery = await asyncio.wait_for(stuck_pipe.deliver(messages(50), {}, 100), 10)

    assert (delivery.completed, delivery.failed) == (0, 50)
    assert threads.stuck == 2
    assert sorted(stuck_handler.handled) == []
    overran = [f for f in delivery.failures if "took longer than 0.2 s" in f.failure_message]
    refused = [f for f in delivery.failures if "was not called" in f.failure_message]
    assert len(overran) == 2 and len(refused) == 48
    assert "2 of its calls are still running" in refused[0].failure_message
    assert "the most this worker keeps (2)" in refused[0].failure_message
    # another handler still runs
    assert (await other_pipe.deliver(messages(5), {}, 10)).completed == 5
    # and once its stuck calls return, the handler is called again (a limit with margin now:
    # the same handler, so the same count of stuck calls)
    stuck_handler.blocked.clear()
    stuck_handler.released.set()
    await eventually(lambda: threads.stuck == 0)
    unstuck_pipe = LocalPipe("stuck", stuck_handler, threads, time_limit=10)
    assert (await unstuck_pipe.deliver(messages(5), {}, 10)).completed == 5


async def test_a_watch_cancelled_during_a_stuck_call_counts_the_call_against_the_bound(
    handlers: list[Blocking],
) -> None:
    # Given a run whose second call blocks, watched with a limit it will not reach
    handler = blocking(handlers, blocked={1})
    threads = HandlerThreads(stuck_limit=1)
    source = "item handler local:blocking"
    run = threads.start(source, handler.handle, messages(3), {})
    await eventually(handler.entered.is_set)

    # When the watch is cancelled while that call is stuck (by a timeout, as the activity's is)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(run.watch(600), 0.2)

    # Then the call is left behind, counted, and holds the handler back at the bound
    assert threads.stuck == 1
    assert threads.crowded(source) == 1
    # and once it returns, its thread makes no further call of the run and is free again
    handler.released.set()
    await eventually(lambda: threads.stuck == 0)
    assert handler.handled == [0, 1]
    assert threads.crowded(source) == 0
