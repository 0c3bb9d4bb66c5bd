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
from collections.abc import Callable
from enum import Enum
from typing import Any

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
    """Calls ``call(0)``, ``call(1)`` ... ``call(count - 1)`` in order on one pipe thread,
    watched from the event loop; what each call raised, or None, is in :meth:`outcomes`."""

    def __init__(
        self,
        threads: HandlerThreads,
        source: str,
        call: Callable[[int], None],
        count: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.source = source
        self._threads = threads
        self._call = call
        self._count = count
        self._loop = loop
        self._lock = threading.Lock()
        self._outcomes: list[BaseException | None] = []
        self._started: float | None = None
        """When the call in hand started; None between calls and once the run is over."""
        self._stopping = False
        self._abandoned = False
        self._done = loop.create_future()

    def outcomes(self) -> list[BaseException | None]:
        """One per call that returned in time, in order; final once :meth:`watch` returned."""
        with self._lock:
            return list(self._outcomes)

    # -- on the pipe thread ------------------------------------------------------------------

    def execute(self) -> bool:
        """Make the calls; False when the run was abandoned during one, which has now returned."""
        while True:
            with self._lock:
                index = len(self._outcomes)
                if self._stopping or index >= self._count:
                    self._started = None
                    break
                self._started = time.monotonic()
            outcome: BaseException | None = None
            try:
                self._call(index)
            except BaseException as exc:  # the handler's failure is the item's, whatever it is
                outcome = exc
            with self._lock:
                if self._abandoned:
                    return False
                self._outcomes.append(outcome)
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
                with self._lock:
                    started, index = self._started, len(self._outcomes)
                left = limit if started is None else started + limit - time.monotonic()
                if left <= 0 and self._abandon(index):
                    return Watch.OVERRAN
                waiting: set[asyncio.Future[Any]] = {self._done}
                if stopping is not None:
                    waiting.add(stopping)
                await asyncio.wait(
                    waiting, timeout=max(left, 0.01), return_when=asyncio.FIRST_COMPLETED
                )
        except asyncio.CancelledError:
            with self._lock:
                self._stopping = True  # nobody is left to watch: no further calls
            raise
        finally:
            if stopping is not None:
                stopping.cancel()
        return Watch.FINISHED

    async def _stop(self) -> Watch:
        with self._lock:
            self._stopping = True
        try:
            await asyncio.wait_for(asyncio.shield(self._done), STOP_GRACE_SECONDS)
        except TimeoutError:
            if self._abandon(None):
                return Watch.STOPPED
        return Watch.FINISHED

    def _abandon(self, index: int | None) -> bool:
        """Leave the call in hand behind, if there is one (and it is call ``index``)."""
        with self._lock:
            if self._started is None or self._done.done():
                return False
            if index is not None and index != len(self._outcomes):
                return False  # that call has returned meanwhile; the next one has its own time
            self._abandoned = True
            self._threads.abandoned(self.source)
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

    def start(self, source: str, call: Callable[[int], None], count: int) -> HandlerRun:
        """Run ``call`` on each of ``range(count)`` on a pipe thread; watch the run returned."""
        run = HandlerRun(self, source, call, count, asyncio.get_running_loop())
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
