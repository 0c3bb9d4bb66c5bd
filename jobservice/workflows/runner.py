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
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)
from temporalio.exceptions import CancelledError as TemporalCancelledError

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import (
        BatchesRequest,
        BatchInput,
        BatchPage,
        BatchState,
        ChunkInput,
        ChunkResult,
        JobContext,
        Progress,
        ProgressReport,
        RunningBatch,
        SplitInput,
        SplitResult,
        SubBatch,
    )
    from jobservice.execution.names import (
        BATCH_WORKFLOW,
        BROKER_UNAVAILABLE,
        DISPATCH_ITEMS,
        IN_FLIGHT_PATCH,
        ITEMS_MEMO,
        PAUSE_SIGNAL,
        RESUME_SIGNAL,
        SPLIT_BATCH,
        TRACKING_REPORTS_PATCH,
    )
    from jobservice.execution.tracking import TrackingBatch, TrackingState
    from jobservice.jobs.job import Failure
    from jobservice.jobs.pipes import is_local_pipe
    from jobservice.jobs.taskids import item_number, workflow_id
    from jobservice.temporal.fairness import job_priority
    from jobservice.workflows.control import BatchControl, Command, Steps
    from jobservice.workflows.tracked import Settled, TrackedItems
    from jobservice.workflows.window import DispatchWindow

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
    on_cancel: Callable[[], None] | None = None
    """Called as soon as the batch knows it is being cancelled, before its tree has stopped."""
    state: BatchState = field(init=False)
    control: BatchControl = field(init=False)
    window: DispatchWindow = field(init=False)
    _children: dict[int, _Child] = field(default_factory=dict, init=False)
    _chunks: list[_Chunk] = field(default_factory=list, init=False)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set, init=False)
    _changed: bool = field(default=False, init=False)
    _failure: Failure | None = field(default=None, init=False)
    _tracked: TrackedItems | None = field(default=None, init=False)
    _child_cancelled: bool = field(default=False, init=False)
    _in_flight_in_hand: bool = field(default=True, init=False)
    """Whether in flight leaves out the items of scheduled chunks (IN_FLIGHT_PATCH)."""

    def __post_init__(self) -> None:
        self.state = self.request.state or BatchState()
        self.state.control.paused = self.state.control.paused or self.request.paused
        self.control = BatchControl(self.state.control)
        queue = not is_local_pipe(self.context.target_pipe)
        self.window = DispatchWindow(
            self.state,
            chunk_size=self.context.engine.chunk_size,
            share=self._window_share() if queue else None,
        )
        self._track_items()

    def _track_items(self) -> None:
        """Items sent to a queue are settled by results from the tracking pipe."""
        split = self.state.split
        if split is None:
            return
        self._name_items(split)
        if is_local_pipe(self.context.target_pipe):
            return
        self._tracked = TrackedItems(
            self.state.tracking or TrackingState(),
            context=self.context,
            path=self.path,
            item_total=split.item_total,
            sub_batch_total=split.sub_batch_total,
        )

    def _name_items(self, split: SplitResult) -> None:
        """Name in the workflow's memo the numbers of the items this batch sends to a queue
        (none, for a local pipe), so that the tracking consumer can tell a result for an item
        that never went out. Batches started before it was named run without."""
        if workflow.memo_value(ITEMS_MEMO, None) is not None or not workflow.patched(ITEMS_MEMO):
            return
        count = 0 if is_local_pipe(self.context.target_pipe) else split.item_total
        first = item_number(split.sub_batch_total, 0)
        last = item_number(split.sub_batch_total, count - 1)  # below first when there are none
        workflow.upsert_memo({ITEMS_MEMO: [first, last]})

    @property
    def context(self) -> JobContext:
        return self.request.context

    @property
    def path(self) -> list[int]:
        return self.request.path

    @property
    def paused(self) -> bool:
        return self.control.paused

    # -- signals -------------------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        """Stop or restart starting work; pausing also stops chunks at their next heartbeat."""
        self._carry_out(self.control.pause() if paused else self.control.resume())
        if not paused:
            self.window.release()
        self._changed = True

    def _carry_out(self, steps: Steps) -> None:
        if steps.stop_chunks:
            for chunk in self._chunks:
                if chunk.handle is not None:
                    chunk.handle.cancel()
        for index, command in steps.children.items():
            child = self._children[index]
            if command is Command.CANCEL:
                if child.task is not None:
                    child.task.cancel()
            elif child.handle is not None:
                self._spawn(self._tell(child.handle, command))

    async def _tell(
        self, handle: workflow.ChildWorkflowHandle[Any, Progress], command: Command
    ) -> None:
        # A child that has just ended has nothing left to pause or resume.
        with contextlib.suppress(FailureError):
            await handle.signal(PAUSE_SIGNAL if command is Command.PAUSE else RESUME_SIGNAL)

    def child_progress(self, report: ProgressReport) -> None:
        """A child batch's progress. A run begun before reports carried the in-flight
        percentage and retries reads them as it did then: as none."""
        child = self._children.get(report.index)
        if child is None:
            return
        progress = report.progress
        if (progress.in_flight_percent or progress.retries) and not workflow.patched(
            TRACKING_REPORTS_PATCH
        ):
            progress = progress.model_copy(update={"in_flight_percent": 0, "retries": 0})
        child.latest = progress
        self._changed = True

    def record_results(self, batch: TrackingBatch) -> None:
        """Results, progress and retries of this batch's forwarded items; a duplicate changes
        nothing. A run begun before signals carried progress replays them as it read them."""
        if self._tracked is None:
            return
        if batch.reports_progress and not workflow.patched(TRACKING_REPORTS_PATCH):
            batch = batch.model_copy(update={"failed_items": [], "progressed": [], "retried": []})
        before = (self._tracked.in_flight_percent, self._tracked.state.retries)
        limit = self.context.engine.failure_details
        self._add_settled(self._tracked.record(batch, limit, sent=self.window.taken))
        if (self._tracked.in_flight_percent, self._tracked.state.retries) != before:
            self._changed = True

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
        retries = state.finished.retries
        # In flight: items published to a queue and not yet settled. Items of a chunk that is
        # scheduled or running are not: a running local chunk has one item in a handler's
        # hands, which only its worker knows and says (jobservice.activities.in_hand).
        in_flight = 0 if self._in_flight_in_hand else sum(c.end - c.start for c in self._chunks)
        percent = 0
        if self._tracked is not None:
            in_flight += self._tracked.outstanding
            percent = self._tracked.in_flight_percent
            retries += self._tracked.state.retries
        failures = list(state.finished.failures)
        complete = self._sub_batches_started()
        waiting = self.window.waiting
        for child in self._children.values():
            if child.latest is None:
                total += child.sub_batch.estimate or 0
                complete = False
                continue
            total += child.latest.total
            completed += child.latest.completed
            failed += child.latest.failed
            in_flight += child.latest.in_flight
            percent += child.latest.in_flight_percent
            retries += child.latest.retries
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
            in_flight_percent=percent,
            retries=retries,
            splitting_complete=complete,
            failures=failures[:limit],
            waiting=waiting,
        )

    def batches(self, request: BatchesRequest) -> BatchPage:
        """This batch and a page of its running children, by index: what a dashboard shows of
        one level of the tree. Reads only, for a query; failures are left out to keep it small.

        Ended children are counted from the cursor of started ones, which continue-as-new
        carries: it happens only when no child is out."""
        state, split = self.state, self.state.split
        start = max(0, request.offset)
        page = sorted(self._children)[start : start + max(0, request.limit)]
        return BatchPage(
            progress=self.progress().model_copy(update={"failures": []}),
            paused=self.paused,
            running=[self._running_batch(index) for index in page],
            running_total=len(self._children),
            finished_children=state.next_sub_batch - len(self._children),
            pending=len(state.pending),
            more_pending=split is None or state.sub_batches_fetched < split.sub_batch_total,
            sub_batch_total=split.sub_batch_total if split else None,
            chunks=len(self._chunks),
            chunk_items=sum(c.end - c.start for c in self._chunks),
        )

    def _running_batch(self, index: int) -> RunningBatch:
        child, context = self._children[index], self.context
        latest = child.latest
        return RunningBatch(
            index=index,
            workflow_id=workflow_id(context.partition, context.job_id, [*self.path, index]),
            progress=latest.model_copy(update={"failures": []}) if latest else None,
            estimate=child.sub_batch.estimate,
            paused=self.control.told_paused(index),
        )

    # -- the run -------------------------------------------------------------------------

    async def run(
        self, report: Callable[[Progress], Awaitable[None]] | None = None
    ) -> Progress | BatchInput:
        """Run the batch to its end; returns its final progress, or the input to continue as new."""
        engine = self.context.engine
        interval = timedelta(seconds=engine.progress_interval_seconds)
        reported: Progress | None = None
        last_report = workflow.now() - interval  # the first news goes up at once
        # Once, where every run reaches it: queries and wait predicates may not ask.
        self._in_flight_in_hand = workflow.patched(IN_FLIGHT_PATCH)
        try:
            if self.state.split is None:
                await self._fetch_sub_batches()
            while True:
                self._raise_on_failure()
                draining = workflow.info().get_current_history_length() > engine.history_limit
                if self.control.may_start() and not draining:
                    await self._start_work()
                    self._raise_on_failure()
                idle = not self._children and not self._chunks
                if idle and self._finished():
                    break
                if idle and draining:
                    return self._continue_as_new_input()
                self._changed = False
                # A paused batch reports each change at once: its last counts come up the
                # tree in moments rather than an interval a level, and there are few.
                spacing = interval if self.control.may_start() else timedelta(0)
                due = report is not None and self.progress() != reported
                wake = [last_report + spacing] if due else []
                wake += self._timers()
                timeout = min(wake) - workflow.now() if wake else None
                if timeout is None or timeout > timedelta(0):
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(lambda: self._changed, timeout=timeout)
                if self._tracked is not None:
                    self._add_settled(self._tracked.expire(workflow.now(), engine.failure_details))
                if report is not None and workflow.now() - last_report >= spacing:
                    current = self.progress()
                    if current != reported:
                        await report(current)
                        reported, last_report = current, workflow.now()
        except asyncio.CancelledError:
            if self.on_cancel is not None:
                self.on_cancel()
            await self._stop_everything()
            raise
        except BatchFailedError:
            await self._stop_everything()
            raise
        await self._settle()
        return self.progress()

    def _raise_on_failure(self) -> None:
        """Raise what ends the batch: a cancellation, or a failure of its own or a child's.

        Temporal's request to cancel the workflow is read here too, not only as the
        CancelledError it raises once: an operation in flight at that moment (a signal to the
        parent, say) may absorb that error, and the batch must stop all the same. So must a
        batch one of whose children was cancelled: cancelling any batch cancels the job."""
        if workflow.cancellation_reason() is not None or self._child_cancelled:
            raise asyncio.CancelledError
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
        if self.control.may_start() and (wake_at := self.window.wake_at(workflow.now())):
            timers.append(wake_at)
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
        out = sum(c.end - c.start for c in self._chunks)
        if self._tracked is not None:
            out += self._tracked.outstanding
        return self.window.room(workflow.now(), out)

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
        if not is_local_pipe(self.context.target_pipe):
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
                self._raise_on_failure()
                if not self.control.may_start():
                    return  # paused while it split
                continue
            index = self.state.next_sub_batch + 1
            child = _Child(self.state.pending.pop(0))
            self.state.next_sub_batch = index
            self._children[index] = child
            paused = self.control.child_starting(index)
            child.task = self._spawn(self._run_child(index, child, paused))
        while len(self._chunks) < engine.chunk_window:
            span = self.window.take(self._chunk_room())
            if span is None:
                break
            chunk = _Chunk(*span)
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
                priority=self._priority(),
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

    def _priority(self) -> Priority:
        """Every task of the job is under the job's fairness key, so that matching serves each
        running job in turn: a small job does not wait behind a huge one's queued chunks. Set on
        each call rather than only inherited from the root, so that the tree of a root started
        without it (by hand, from the Temporal CLI) has it all the same."""
        return job_priority(self.context.partition, self.context.job_id)

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=60),
            maximum_attempts=self.context.engine.max_attempts,
            non_retryable_error_types=NON_RETRYABLE,
        )

    async def _run_child(self, index: int, child: _Child, paused: bool) -> None:
        path = [*self.path, index]
        final: Progress | None = None
        try:
            handle = await workflow.start_child_workflow(
                BATCH_WORKFLOW,
                BatchInput(
                    context=self.context,
                    path=path,
                    definition=child.sub_batch.definition,
                    paused=paused,
                    budget=max(1, self._budget // self._batch_window()),
                ),
                id=workflow_id(self.context.partition, self.context.job_id, path),
                result_type=Progress,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                priority=self._priority(),
            )
            child.handle = handle
            # A pause or a cancel that came while the child was starting reaches it now.
            command = self.control.child_started(index)
            if command is not None:
                self._carry_out(Steps(children={index: command}))
            final = await handle
        except Exception as error:
            if is_cancelled_exception(error):
                self._child_cancelled = True
            else:
                self._failure = self._failure or failure_from_error(
                    error, self.context.task_id(path), f"batch {self.context.task_id(path)}"
                )
        finally:
            # A child that did not finish keeps what it last reported: a cancelled batch
            # reports its final counts just before it closes.
            done = final if final is not None else child.latest
            if done is not None:
                self._add_finished(done)
            self.control.child_ended(index)
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
            priority=self._priority(),
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
            self.window.returned(chunk.start + result.processed, chunk.end)
            if result.processed:
                self.window.delivered()
            if result.held:
                self.window.hold(workflow.now())
        except Exception as error:
            cause = error.cause if isinstance(error, ActivityError) else None
            if isinstance(cause, TemporalCancelledError):
                self.window.returned(chunk.start, chunk.end)
            elif isinstance(cause, ApplicationError) and cause.type == BROKER_UNAVAILABLE:
                self.window.returned(chunk.start, chunk.end)
                self.window.broker_unavailable(workflow.now(), cause.message)
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
            retries=finished.retries + done.retries,
            failures=(finished.failures + done.failures)[:limit],
        )

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stop_everything(self) -> None:
        """Cancel every child and chunk still out, and wait until they have stopped."""
        self._carry_out(self.control.cancel())
        await self._settle()

    async def _settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
