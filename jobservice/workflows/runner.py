"""Runs one batch inside a workflow: its sub-batches as child workflows, its items as chunks.

Both windows slide: at most ``batch_window`` children and ``chunk_window`` chunks are out at a
time. Children report their rolled-up progress as signals, at most once per progress interval,
and their final counts as their result. When the history grows past ``history_limit`` the
runner stops starting work, lets what is out finish, and continues as new with its cursors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)
from temporalio.exceptions import CancelledError as TemporalCancelledError

with workflow.unsafe.imports_passed_through():
    from jobservice.execution import (
        BATCH_WORKFLOW,
        BROKER_UNAVAILABLE,
        DISPATCH_ITEMS,
        PAUSE_SIGNAL,
        RESUME_SIGNAL,
        SPLIT_BATCH,
        BatchInput,
        BatchState,
        ChunkInput,
        ChunkResult,
        JobContext,
        Progress,
        ProgressReport,
        SplitInput,
        SplitResult,
        SubBatch,
        TrackingBatch,
        TrackingState,
    )
    from jobservice.models import LOCAL_PIPE_PREFIX, Failure
    from jobservice.taskids import workflow_id
    from jobservice.workflows.tracked import Settled, TrackedItems

MAX_BROKER_BACKOFF = 60.0
MIN_QUEUE_SHARE = 500
"""The least of a job's in-flight window a batch sending items to a queue runs with."""
NON_RETRYABLE = ["BatchDefinitionError", "InvalidJobError"]


class BatchFailedError(Exception):
    """The batch cannot finish: a plugin refused its definition, or a child batch failed."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.failure_message)
        self.failure = failure


def failure_from_error(error: BaseException, failure_id: str, source: str) -> Failure:
    """The failure an activity or child reported in its details, else one made from its message."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.details:
            try:
                return Failure.model_validate(cause.details[0])
            except ValueError:
                pass
        cause = cause.__cause__ or getattr(cause, "cause", None)
    message = error.message if isinstance(error, FailureError) else str(error)
    cause = error.__cause__
    while cause is not None:  # the innermost message says what went wrong
        if isinstance(cause, FailureError) and cause.message:
            message = cause.message
        cause = cause.__cause__
    return Failure(
        failure_id=failure_id,
        failure_time=workflow.now(),
        failure_source=source,
        failure_message=message,
    )


def failure_details(failure: Failure) -> dict[str, Any]:
    return failure.model_dump(mode="json", by_alias=True)


@dataclass(eq=False)
class _Child:
    sub_batch: SubBatch
    handle: workflow.ChildWorkflowHandle[Any, Progress] | None = None
    task: asyncio.Future[Any] | None = None
    latest: Progress | None = None
    paused: bool = False


@dataclass(eq=False)
class _Chunk:
    start: int
    end: int
    handle: workflow.ActivityHandle[ChunkResult] | None = None


@dataclass
class BatchRunner:
    """The state machine of one batch; the workflow feeds it signals and awaits :meth:`run`."""

    request: BatchInput
    stop_check: Callable[[Progress], Failure | None] | None = None
    state: BatchState = field(init=False)
    paused: bool = field(init=False)
    _children: dict[int, _Child] = field(default_factory=dict, init=False)
    _chunks: list[_Chunk] = field(default_factory=list, init=False)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set, init=False)
    _changed: bool = field(default=False, init=False)
    _failure: Failure | None = field(default=None, init=False)
    _tracked: TrackedItems | None = field(default=None, init=False)
    _waiting: str | None = field(default=None, init=False)
    _retry_at: datetime | None = field(default=None, init=False)
    _backoff: float = field(default=1.0, init=False)

    def __post_init__(self) -> None:
        self.state = self.request.state or BatchState()
        self.paused = self.request.paused
        self._track_items()

    def _track_items(self) -> None:
        """Items sent to a queue are settled by results from the tracking pipe."""
        split = self.state.split
        if split is None or self.context.target_pipe.startswith(LOCAL_PIPE_PREFIX):
            return
        self._tracked = TrackedItems(
            self.state.tracking or TrackingState(),
            context=self.context,
            path=self.path,
            item_total=split.item_total,
            sub_batch_total=split.sub_batch_total,
        )

    @property
    def context(self) -> JobContext:
        return self.request.context

    @property
    def path(self) -> list[int]:
        return self.request.path

    # -- signals -------------------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        """Stop or restart starting work; pausing also stops chunks at their next heartbeat."""
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            for chunk in self._chunks:
                if chunk.handle is not None:
                    chunk.handle.cancel()
        for child in self._children.values():
            if child.handle is not None and child.paused != paused:
                child.paused = paused
                self._spawn(child.handle.signal(PAUSE_SIGNAL if paused else RESUME_SIGNAL))
        self._changed = True

    def child_progress(self, report: ProgressReport) -> None:
        child = self._children.get(report.index)
        if child is not None:
            child.latest = report.progress
            self._changed = True

    def record_results(self, batch: TrackingBatch) -> None:
        """Final results of this batch's forwarded items; a duplicate changes nothing."""
        if self._tracked is not None:
            limit = self.context.engine.failure_details
            self._add_settled(self._tracked.record(batch, limit))

    def _add_settled(self, settled: Settled) -> None:
        if settled.completed or settled.failed:
            self._add_finished(
                Progress(
                    completed=settled.completed,
                    failed=settled.failed,
                    failures=settled.failures,
                )
            )
            self._changed = True

    # -- progress ------------------------------------------------------------------------

    def progress(self) -> Progress:
        """The rolled-up counts of this batch and everything below it, as known now."""
        state, split = self.state, self.state.split
        limit = self.context.engine.failure_details
        total = state.finished.total + (split.item_total if split else 0)
        completed, failed = state.finished.completed, state.finished.failed
        in_flight = sum(c.end - c.start for c in self._chunks)
        in_flight += self._tracked.outstanding if self._tracked else 0
        failures = list(state.finished.failures)
        complete = self._sub_batches_started()
        waiting = self._waiting
        for child in self._children.values():
            if child.latest is None:
                total += child.sub_batch.estimate or 0
                complete = False
                continue
            total += child.latest.total
            completed += child.latest.completed
            failed += child.latest.failed
            in_flight += child.latest.in_flight
            failures.extend(child.latest.failures[: max(0, limit - len(failures))])
            complete = complete and child.latest.splitting_complete
            waiting = waiting or child.latest.waiting
        total += sum(s.estimate or 0 for s in state.pending)
        if not complete and split is not None and split.estimate is not None:
            total = max(total, split.estimate)
        return Progress(
            total=max(total, completed + failed),
            completed=completed,
            failed=failed,
            in_flight=in_flight,
            splitting_complete=complete,
            failures=failures[:limit],
            waiting=waiting,
        )

    # -- the run -------------------------------------------------------------------------

    async def run(
        self, report: Callable[[Progress], Awaitable[None]] | None = None
    ) -> Progress | BatchInput:
        """Run the batch to its end; returns its final progress, or the input to continue as new."""
        engine = self.context.engine
        interval = timedelta(seconds=engine.progress_interval_seconds)
        reported: Progress | None = None
        last_report = workflow.now()
        try:
            if self.state.split is None:
                await self._fetch_sub_batches()
            while True:
                self._raise_on_failure()
                draining = workflow.info().get_current_history_length() > engine.history_limit
                if not self.paused and not draining:
                    await self._start_work()
                    self._raise_on_failure()
                idle = not self._children and not self._chunks
                if idle and self._finished():
                    break
                if idle and draining:
                    return self._continue_as_new_input()
                self._changed = False
                due = report is not None and self.progress() != reported
                wake = [last_report + interval] if due else []
                wake += self._timers()
                timeout = min(wake) - workflow.now() if wake else None
                if timeout is None or timeout > timedelta(0):
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(lambda: self._changed, timeout=timeout)
                if self._tracked is not None:
                    self._add_settled(self._tracked.expire(workflow.now(), engine.failure_details))
                if report is not None and workflow.now() - last_report >= interval:
                    current = self.progress()
                    if current != reported:
                        await report(current)
                        reported, last_report = current, workflow.now()
        except (asyncio.CancelledError, BatchFailedError):
            await self._stop_everything()
            raise
        await self._settle()
        return self.progress()

    def _raise_on_failure(self) -> None:
        if self._failure is None and self.stop_check is not None:
            self._failure = self.stop_check(self.progress())
        if self._failure is not None:
            raise BatchFailedError(self._failure)

    def _sub_batches_started(self) -> bool:
        split = self.state.split
        return (
            split is not None
            and self.state.sub_batches_fetched >= split.sub_batch_total
            and not self.state.pending
        )

    def _timers(self) -> list[datetime]:
        """When the loop must wake without news: an overdue result, a retry for the broker."""
        timers = []
        if self._tracked is not None and (deadline := self._tracked.next_deadline()):
            timers.append(deadline)
        if self._retry_at is not None and self.state.retry_ranges and not self.paused:
            timers.append(self._retry_at)
        return timers

    def _finished(self) -> bool:
        split = self.state.split
        assert split is not None
        return (
            self._sub_batches_started()
            and self.state.next_item >= split.item_total
            and not self.state.retry_ranges
            and (self._tracked is None or self._tracked.all_settled)
        )

    def _continue_as_new_input(self) -> BatchInput:
        if self._tracked is not None:
            self.state.tracking = self._tracked.snapshot()
        return self.request.model_copy(update={"paused": self.paused, "state": self.state})

    def _chunk_room(self) -> int:
        """Items the next chunk may carry: for a queue, what the in-flight window leaves."""
        engine = self.context.engine
        if self._tracked is None:
            return engine.chunk_size
        if self._retry_at is not None and workflow.now() < self._retry_at:
            return 0  # the broker was unreachable; wait before trying again
        allowance = self._window_share()
        out = self._tracked.outstanding + sum(c.end - c.start for c in self._chunks)
        room = allowance - out
        if out and room < min(allowance // 2, self._undispatched()):
            return 0  # refill in halves: a result at a time would make chunks of a few items
        return max(0, min(engine.chunk_size, room))

    def _undispatched(self) -> int:
        """Items of this batch not yet sent, or to be sent again."""
        split = self.state.split
        left = split.item_total - self.state.next_item if split is not None else 0
        return left + sum(end - start for start, end in self.state.retry_ranges)

    def _window_share(self) -> int:
        """This subtree's share of the job's in-flight window."""
        engine = self.context.engine
        return max(1, engine.in_flight_window * self._budget // engine.batch_budget)

    @property
    def _budget(self) -> int:
        return self.request.budget or self.context.engine.batch_budget

    def _batch_window(self) -> int:
        """Children at once: no more than the window, the budget, or the sub-batches there are."""
        split = self.state.split
        assert split is not None
        window = min(self.context.engine.batch_window, self._budget, split.sub_batch_total)
        if not self.context.target_pipe.startswith(LOCAL_PIPE_PREFIX):
            # Items to a queue: fewer batches at once, each with a share of the in-flight
            # window worth a chunk, rather than many that trickle a few items each.
            window = min(window, self._window_share() // MIN_QUEUE_SHARE)
        return max(1, window)

    async def _start_work(self) -> None:
        engine = self.context.engine
        split = self.state.split
        assert split is not None
        while len(self._children) < self._batch_window():
            if not self.state.pending:
                if self.state.sub_batches_fetched >= split.sub_batch_total:
                    break
                await self._fetch_sub_batches()
                if self.paused:
                    return
                continue
            index = self.state.next_sub_batch + 1
            child = _Child(self.state.pending.pop(0), paused=self.paused)
            self.state.next_sub_batch = index
            self._children[index] = child
            child.task = self._spawn(self._run_child(index, child))
        while len(self._chunks) < engine.chunk_window and (room := self._chunk_room()) > 0:
            if self.state.retry_ranges:
                start, end = self.state.retry_ranges.pop(0)
                if end - start > room:
                    self.state.retry_ranges.insert(0, (start + room, end))
                    end = start + room
            elif self.state.next_item < split.item_total:
                start = self.state.next_item
                end = min(start + room, split.item_total)
                self.state.next_item = end
            else:
                break
            chunk = _Chunk(start, end)
            self._chunks.append(chunk)
            self._spawn(self._run_chunk(chunk))

    async def _fetch_sub_batches(self) -> None:
        engine = self.context.engine
        try:
            result: SplitResult = await workflow.execute_activity(
                SPLIT_BATCH,
                SplitInput(
                    context=self.context,
                    path=self.path,
                    definition=self.request.definition,
                    sub_batch_offset=self.state.sub_batches_fetched,
                    sub_batch_limit=engine.sub_batch_page,
                ),
                result_type=SplitResult,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=self._retry_policy(),
            )
        except ActivityError as error:
            if is_cancelled_exception(error):
                # The batch is being cancelled while it splits: that is not a failure.
                raise asyncio.CancelledError from error
            raise BatchFailedError(
                failure_from_error(
                    error,
                    self.context.task_id(self.path),
                    f"batch plugin {self.context.batch_type!r}",
                )
            ) from error
        if self.state.split is None:
            self.state.split = result.model_copy(update={"sub_batches": []})
            self._track_items()
        self.state.pending.extend(result.sub_batches)
        self.state.sub_batches_fetched += len(result.sub_batches)
        if not result.sub_batches:  # the batch shrank since it was counted
            self.state.sub_batches_fetched = self.state.split.sub_batch_total

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=60),
            maximum_attempts=self.context.engine.max_attempts,
            non_retryable_error_types=NON_RETRYABLE,
        )

    async def _run_child(self, index: int, child: _Child) -> None:
        path = [*self.path, index]
        try:
            handle = await workflow.start_child_workflow(
                BATCH_WORKFLOW,
                BatchInput(
                    context=self.context,
                    path=path,
                    definition=child.sub_batch.definition,
                    paused=child.paused,
                    budget=max(1, self._budget // self._batch_window()),
                ),
                id=workflow_id(self.context.partition, self.context.job_id, path),
                result_type=Progress,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            )
            child.handle = handle
            if child.paused != self.paused:
                child.paused = self.paused
                await handle.signal(PAUSE_SIGNAL if self.paused else RESUME_SIGNAL)
            final: Progress = await handle
            self._add_finished(final)
        except Exception as error:
            self._failure = self._failure or failure_from_error(
                error, self.context.task_id(path), f"batch {self.context.task_id(path)}"
            )
        finally:
            del self._children[index]
            self._changed = True

    async def _run_chunk(self, chunk: _Chunk) -> None:
        engine = self.context.engine
        split = self.state.split
        assert split is not None
        chunk.handle = workflow.start_activity(
            DISPATCH_ITEMS,
            ChunkInput(
                context=self.context,
                path=self.path,
                definition=self.request.definition,
                sub_batch_total=split.sub_batch_total,
                start=chunk.start,
                end=chunk.end,
            ),
            result_type=ChunkResult,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=engine.heartbeat_timeout_seconds),
            retry_policy=self._retry_policy(),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        try:
            result = await chunk.handle
            self._add_finished(
                Progress(completed=result.completed, failed=result.failed, failures=result.failures)
            )
            if self._tracked is not None:
                end = chunk.start + result.processed
                self._tracked.forwarded(
                    chunk.start, end, result.forwarded, result.refused, workflow.now()
                )
            if chunk.start + result.processed < chunk.end:
                self.state.retry_ranges.append((chunk.start + result.processed, chunk.end))
            if result.processed:
                self._waiting, self._retry_at, self._backoff = None, None, 1.0
        except Exception as error:
            cause = error.cause if isinstance(error, ActivityError) else None
            if isinstance(cause, TemporalCancelledError):
                self.state.retry_ranges.append((chunk.start, chunk.end))
            elif isinstance(cause, ApplicationError) and cause.type == BROKER_UNAVAILABLE:
                self.state.retry_ranges.append((chunk.start, chunk.end))
                self._waiting = f"waiting for the target pipe: {cause.message}"
                self._retry_at = workflow.now() + timedelta(seconds=self._backoff)
                self._backoff = min(self._backoff * 2, MAX_BROKER_BACKOFF)
            else:
                self._failure = self._failure or failure_from_error(
                    error,
                    self.context.task_id(self.path),
                    f"batch plugin {self.context.batch_type!r}",
                )
        finally:
            self._chunks.remove(chunk)
            self._changed = True

    def _add_finished(self, done: Progress) -> None:
        finished = self.state.finished
        limit = self.context.engine.failure_details
        self.state.finished = Progress(
            total=finished.total + done.total,
            completed=finished.completed + done.completed,
            failed=finished.failed + done.failed,
            failures=(finished.failures + done.failures)[:limit],
        )

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stop_everything(self) -> None:
        """Cancel every child and chunk still out, and wait until they have stopped."""
        for chunk in self._chunks:
            if chunk.handle is not None:
                chunk.handle.cancel()
        for child in self._children.values():
            if child.task is not None:
                child.task.cancel()
        await self._settle()

    async def _settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
