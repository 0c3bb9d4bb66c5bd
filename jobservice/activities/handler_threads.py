"""Item handler calls with a time limit, on daemon threads the worker keeps for them.

A handler is an application's code, and it may block for good: a FIFO, a lock, a remote call
without a timeout. Python cannot stop a thread, so a call that overruns is abandoned: the pipe
fails its item and goes on with the next items on another thread, and the abandoned thread
comes back to the pool if its call ever returns. The threads are daemon threads, so that one
stuck for good never holds up the process's exit (the default executor's threads are joined at
exit). A worker keeps a bounded number of abandoned calls; past the bound, the items of a
handler that still has calls running past their limit fail at once, rather than each taking
another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

from jobservice.messages import TaskMessage

STOP_GRACE_SECONDS = 0.5
"""How long a run told to stop waits for the call in hand before leaving it behind."""

_log = logging.getLogger(__name__)


class Watch(Enum):
    """How a run ended, as its watcher saw it."""

    FINISHED = "finished"
    """Every call returned; or the run was told to stop, and stopped after the call in hand."""
    OVERRAN = "overran"
    """The call in hand took longer than the limit; it is left behind on its thread."""
    STOPPED = "stopped"
    """The run was told to stop, and the call in hand did not return in time: left behind."""


class HandlerRun:
    """Calls ``handle`` on each message in order on one pipe thread, watched from the event
    loop; how many calls returned in time, and which of them raised what, is in
    :meth:`results`.

    The thread takes no lock between calls (a handler such as ``noop`` costs less than one):
    it only stores what the watcher reads, each store whole. The watcher decides, under the
    lock, where the run was cut when it leaves a call behind; the thread, under the same lock,
    either finishes the run or learns that it was left behind.
    """

    def __init__(
        self,
        threads: HandlerThreads,
        source: str,
        handle: Callable[[TaskMessage, Mapping[str, str]], None],
        messages: Sequence[TaskMessage],
        params: Mapping[str, str],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.source = source
        self._threads = threads
        self._handle = handle
        self._messages = messages
        self._params = params
        self._loop = loop
        self._lock = threading.Lock()
        self._returned = 0
        """Calls that returned: the call in hand, or the next one, is this one."""
        self._failures: list[tuple[int, BaseException]] = []
        self._current: tuple[int, float] | None = None
        """The call in hand, or the last one, and when it started."""
        self._halt = False
        """No further call: the run was told to stop, or left behind."""
        self._abandoned = False
        self._finished = False
        self._cut: int | None = None
        """Where the watcher cut the run when it left a call behind."""
        self._done = loop.create_future()

    def results(self) -> tuple[int, list[tuple[int, BaseException]]]:
        """How many calls returned in time, and the index and exception of each of them that
        raised; final once :meth:`watch` has returned."""
        with self._lock:
            cut = self._returned if self._cut is None else self._cut
            return cut, [failure for failure in self._failures if failure[0] < cut]

    # -- on the pipe thread ------------------------------------------------------------------

    def execute(self) -> bool:
        """Make the calls; False when the run was left behind during one, which has now
        returned."""
        handle, messages, params, clock = self._handle, self._messages, self._params, time.monotonic
        count = len(messages)
        index = 0
        # Each store below is whole before the watcher reads it: a failure before the count
        # that covers it, the count before the next call's start.
        while index < count and not self._halt:
            self._current = (index, clock())
            try:
                handle(messages[index], params)
            except BaseException as exc:  # the handler's failure is the item's, whatever it is
                self._failures.append((index, exc))
            index += 1
            self._returned = index
        with self._lock:
            if self._abandoned:
                return False
            self._finished = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for the run
            self._loop.call_soon_threadsafe(self._finish)
        return True

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    # -- on the event loop -------------------------------------------------------------------

    async def watch(self, limit: float, stop: asyncio.Event | None = None) -> Watch:
        """Wait until the run ends, a call overruns ``limit`` seconds, or ``stop`` is set."""
        stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            while not self._done.done():
                if stopping is not None and stopping.done():
                    return await self._stop()
                current = self._current
                left = limit if current is None else current[1] + limit - time.monotonic()
                # The call read as in hand had run for the whole limit when it was read, even
                # if it has returned since: it overran.
                if left <= 0 and current is not None and self._abandon(current[0]):
                    return Watch.OVERRAN
                waiting: set[asyncio.Future[Any]] = {self._done}
                if stopping is not None:
                    waiting.add(stopping)
                await asyncio.wait(
                    waiting, timeout=max(left, 0.01), return_when=asyncio.FIRST_COMPLETED
                )
        except asyncio.CancelledError:
            # Nobody is left to watch: no further calls, and a call in hand that never returns
            # is counted against the worker's bound like any other left behind.
            self._abandon(None)
            raise
        finally:
            if stopping is not None:
                stopping.cancel()
        return Watch.FINISHED

    async def _stop(self) -> Watch:
        self._halt = True
        try:
            await asyncio.wait_for(asyncio.shield(self._done), STOP_GRACE_SECONDS)
        except TimeoutError:
            if self._abandon(None):
                return Watch.STOPPED
        return Watch.FINISHED

    def _abandon(self, cut: int | None) -> bool:
        """Leave the call in hand behind, the run cut at call ``cut`` (None: at the calls that
        have returned by now); False if the run has finished meanwhile."""
        with self._lock:
            if self._finished:
                return False
            self._threads.abandoned(self.source)  # counted before the thread can see it
            self._abandoned = self._halt = True
            self._cut = self._returned if cut is None else cut
            return True


class HandlerThreads:
    """The worker's pipe threads, and the calls it has abandoned on them.

    ``stuck_limit`` bounds the abandoned calls that still hold a thread. Past it, a handler
    with abandoned calls gets no new ones (see :meth:`crowded`); a handler without any may
    still overrun once per slice in flight, so the bound can be passed by the worker's
    concurrent activities at most.
    """

    def __init__(self, stuck_limit: int) -> None:
        self.stuck_limit = stuck_limit
        self._lock = threading.Lock()
        self._runs: queue.SimpleQueue[HandlerRun] = queue.SimpleQueue()
        self._idle = 0
        self._stuck: Counter[str] = Counter()
        self._overran: set[str] = set()
        self._told_full = False

    @property
    def stuck(self) -> int:
        """Abandoned calls still running."""
        with self._lock:
            return self._stuck.total()

    def crowded(self, source: str) -> int:
        """How many calls of ``source`` are still running past their limit, when the worker
        holds as many abandoned calls as it keeps; 0 while ``source`` may be called."""
        with self._lock:
            mine = self._stuck[source]
            return mine if mine and self._stuck.total() >= self.stuck_limit else 0

    def start(
        self,
        source: str,
        handle: Callable[[TaskMessage, Mapping[str, str]], None],
        messages: Sequence[TaskMessage],
        params: Mapping[str, str],
    ) -> HandlerRun:
        """Call ``handle`` on each message on a pipe thread; watch the run returned."""
        run = HandlerRun(self, source, handle, messages, params, asyncio.get_running_loop())
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._runs.put(run)
        if spawn:
            threading.Thread(target=self._serve, name="jobservice-handler", daemon=True).start()
        return run

    def _serve(self) -> None:
        while True:
            run = self._runs.get()
            if not run.execute():
                self._returned(run.source)
            with self._lock:
                self._idle += 1

    def abandoned(self, source: str) -> None:
        """A call of ``source`` overran and is left behind on its thread."""
        with self._lock:
            self._stuck[source] += 1
            stuck = self._stuck.total()
            first = source not in self._overran
            self._overran.add(source)
            full = stuck >= self.stuck_limit and not self._told_full
            self._told_full = self._told_full or full
        if first:
            _log.warning(
                "%s overran its time limit; the call is left running on its thread and "
                "the item failed (said once per handler)",
                source,
            )
        if full:
            _log.warning(
                "%d item handler calls are running past their time limit, the most this "
                "worker keeps (worker_stuck_handler_threads); items of a handler with calls "
                "still stuck fail at once until some return (said once)",
                stuck,
            )

    def _returned(self, source: str) -> None:
        with self._lock:
            self._stuck[source] -= 1
            if self._stuck[source] <= 0:
                del self._stuck[source]
