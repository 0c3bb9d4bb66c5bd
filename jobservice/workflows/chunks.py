"""A batch's own items, dispatched in chunks: each chunk a ``dispatch_items`` activity that
hands its items to the target pipe and returns what became of them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelledError

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import (
        BatchInput,
        ChunkInput,
        ChunkResult,
        PaceSlot,
        Progress,
    )
    from jobservice.execution.names import BROKER_UNAVAILABLE, DISPATCH_ITEMS, KEPT_RESULTS_PATCH
    from jobservice.jobs.job import Failure
    from jobservice.workflows.children import Spawn
    from jobservice.workflows.failures import failure_from_error
    from jobservice.workflows.kept import heartbeated, result_kept
    from jobservice.workflows.tracked import TrackedItems
    from jobservice.workflows.window import DispatchWindow


@dataclass(eq=False)
class Chunk:
    start: int
    end: int
    handle: workflow.ActivityHandle[ChunkResult] | None = None


class Chunks:
    """The chunks of one batch out now. A chunk's result goes to the window (its cursor), to
    the tracking of queued items (``tracked``, once the batch has one) and to ``finished``; a
    chunk that failed for good, to ``failed``."""

    def __init__(
        self,
        request: BatchInput,
        window: DispatchWindow,
        spawn: Spawn,
        *,
        retry_policy: RetryPolicy,
        priority: Callable[[], Priority],
        tracked: Callable[[], TrackedItems | None],
        finished: Callable[[Progress], None],
        failed: Callable[[Failure], None],
        changed: Callable[[], None],
    ) -> None:
        self._request = request
        self._window = window
        self._spawn = spawn
        self._retry_policy = retry_policy
        self._priority = priority
        self._tracked = tracked
        self._finished = finished
        self._failed = failed
        self._changed = changed
        self.out: list[Chunk] = []

    def __len__(self) -> int:
        return len(self.out)

    def items(self) -> int:
        """Items of the chunks out now."""
        return sum(chunk.end - chunk.start for chunk in self.out)

    def start(
        self,
        start: int,
        end: int,
        *,
        sub_batch_total: int,
        pace: PaceSlot | None = None,
        amqp_priority: int | None = None,
    ) -> None:
        """Dispatch items ``[start, end)`` of the batch, within ``pace`` if the job has a rate
        limit, its task messages with ``amqp_priority`` if any."""
        chunk = Chunk(start, end)
        self.out.append(chunk)
        self._spawn(
            self._run(
                chunk,
                ChunkInput(
                    context=self._request.context,
                    path=self._request.path,
                    definition=self._request.definition,
                    sub_batch_total=sub_batch_total,
                    start=start,
                    end=end,
                    pace=pace,
                    amqp_priority=amqp_priority,
                ),
            )
        )

    def stop(self) -> None:
        """Cancel every chunk out: each stops after the slice it is in, with what it did."""
        for chunk in self.out:
            if chunk.handle is not None:
                chunk.handle.cancel()

    def _took(self, chunk: Chunk, result: ChunkResult) -> None:
        """What a chunk did: counted, its items out tracked, the rest back to the window."""
        window = self._window
        self._finished(
            Progress(completed=result.completed, failed=result.failed, failures=result.failures)
        )
        tracked = self._tracked()
        if tracked is not None:
            end = chunk.start + result.processed
            tracked.forwarded(chunk.start, end, result.forwarded, result.refused, workflow.now())
        window.returned(chunk.start + result.processed, chunk.end)
        if result.processed:
            window.delivered()
        if result.held:
            window.hold(workflow.now())

    def _took_back(self, chunk: Chunk, result: ChunkResult | None) -> None:
        """A chunk that was cancelled: what it did, if that is known, and the rest back to
        the window. A run begun before results were read there returns all of it."""
        if result is None or not workflow.patched(KEPT_RESULTS_PATCH):
            self._window.returned(chunk.start, chunk.end)
        else:
            self._took(chunk, result)

    async def _run(self, chunk: Chunk, chunk_input: ChunkInput) -> None:
        request = self._request
        context = request.context
        engine = context.engine
        chunk.handle = workflow.start_activity(
            DISPATCH_ITEMS,
            chunk_input,
            result_type=ChunkResult,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=engine.heartbeat_timeout_seconds),
            retry_policy=self._retry_policy,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            priority=self._priority(),
        )
        window = self._window
        try:
            self._took(chunk, await chunk.handle)
        except asyncio.CancelledError:
            # Cancelled before it started (nothing was done), or in the moment it completed
            # (see jobservice.workflows.kept).
            self._took_back(chunk, result_kept(chunk.handle, ChunkResult))
            raise
        except Exception as error:
            cause = error.cause if isinstance(error, ActivityError) else None
            if isinstance(cause, TemporalCancelledError):
                # Cancelled between two tries: what the last one heartbeated, it did.
                self._took_back(chunk, heartbeated(cause.details))
            elif isinstance(cause, ApplicationError) and cause.type == BROKER_UNAVAILABLE:
                window.returned(chunk.start, chunk.end)
                window.broker_unavailable(workflow.now(), cause.message)
            else:
                self._failed(
                    failure_from_error(
                        error,
                        context.task_id(request.path),
                        f"batch plugin {context.batch_type!r}",
                    )
                )
        finally:
            self.out.remove(chunk)
            self._changed()
