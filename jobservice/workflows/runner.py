"""Runs one batch inside a workflow: its sub-batches as child workflows, its items as chunks.

Both windows slide: at most ``batch_window`` children and ``chunk_window`` chunks are out at a
time. Children report their rolled-up progress as signals, at most once per progress interval,
and their final counts as their result. When the history grows past ``history_limit`` the
runner stops starting work, lets what is out finish, and continues as new with its cursors.

The runner keeps the loop, the splitting and continue-as-new; it hands its children
(:mod:`.children`) and chunks (:mod:`.chunks`) what they need and hears back what became of
them; the counts roll up in :mod:`.rollup` and the capacity comes from :mod:`.budget`.
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

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import (
        BatchesRequest,
        BatchInput,
        BatchPage,
        BatchState,
        JobContext,
        Progress,
        ProgressReport,
    )
    from jobservice.execution.names import (
        CHECKPOINT_PATCH,
        FAILED_ITEMS_PATCH,
        IN_FLIGHT_PATCH,
        TRACKING_REPORTS_PATCH,
    )
    from jobservice.execution.tracking import TrackingBatch
    from jobservice.jobs.job import Failure
    from jobservice.jobs.steering import Steering
    from jobservice.workflows import carrying_on
    from jobservice.workflows.children import ChildBatches
    from jobservice.workflows.chunks import Chunks
    from jobservice.workflows.control import BatchControl, Steps
    from jobservice.workflows.failures import BatchFailedError
    from jobservice.workflows.ledger import FailedItemRecording
    from jobservice.workflows.options import retry_policy
    from jobservice.workflows.rollup import add_finished, roll_up
    from jobservice.workflows.splitting import fetch_sub_batches
    from jobservice.workflows.tracked import Settled, TrackedItems, tracked_items
    from jobservice.workflows.tuning import Tuning, paced_alike
    from jobservice.workflows.window import DispatchWindow


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
    tuning: Tuning = field(init=False)
    children: ChildBatches = field(init=False)
    chunks: Chunks = field(init=False)
    failed_items: FailedItemRecording = field(init=False)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set, init=False)
    _changed: bool = field(default=False, init=False)
    _failure: Failure | None = field(default=None, init=False)
    _tracked: TrackedItems | None = field(default=None, init=False)
    _child_cancelled: bool = field(default=False, init=False)
    _stopping: bool = field(default=False, init=False)  # cancelled or failed: stopping
    finished: bool = field(default=False, init=False)
    _in_flight_in_hand: bool = field(default=True, init=False)
    """Whether in flight leaves out the items of scheduled chunks (IN_FLIGHT_PATCH)."""
    _retry_policy: RetryPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.request.state or BatchState()
        self.state.control.paused = self.state.control.paused or self.request.paused
        self.control = BatchControl(self.state.control)
        self.tuning = Tuning(self.request, self.state.window)
        self._retry_policy = retry_policy(self.context)
        self.window = DispatchWindow(
            self.state,
            chunk_size=self.context.engine.chunk_size,
            share=self.tuning.window_share(),
        )
        self.children = ChildBatches(
            self.context,
            self.path,
            self.control,
            self._spawn,
            priority=lambda: self.tuning.priority,
            steering=lambda: self.tuning.steering,
            finished=self._add_finished,
            failed=self._fail,
            cancelled=self._a_child_was_cancelled,
            changed=self._change,
        )
        self.chunks = Chunks(
            self.request,
            self.window,
            self._spawn,
            retry_policy=self._retry_policy,
            priority=lambda: self.tuning.priority,
            tracked=lambda: self._tracked,
            finished=self._add_finished,
            failed=self._fail,
            changed=self._change,
        )
        self.failed_items = FailedItemRecording(
            self.request,
            self.state,
            self._spawn,
            priority=lambda: self.tuning.priority,
            changed=self._change,
        )
        self._track_items()

    def _track_items(self) -> None:
        """Items sent to a queue are settled by results from the tracking pipe."""
        self._tracked = tracked_items(self.context, self.path, self.state)

    async def carry_on(self) -> BatchRunner:
        """The runner of a redrive's batch that carries on where it stood when its job
        stopped: built anew from what it wrote then (this one, if it wrote nothing). What it
        was told meanwhile (a pause) stands."""
        state = await carrying_on.load(self.request, priority=self.tuning.priority)
        if state is None:
            return self
        request = self.request.model_copy(
            update={"state": state, "paused": self.paused, "steering": self.tuning.steering}
        )
        return BatchRunner(request, stop_check=self.stop_check, on_cancel=self.on_cancel)

    @property
    def context(self) -> JobContext:
        return self.request.context

    @property
    def path(self) -> list[int]:
        return self.request.path

    @property
    def paused(self) -> bool:
        return self.control.paused

    # -- what the children and chunks say back ------------------------------------------

    def _change(self) -> None:
        self._changed = True

    def _fail(self, failure: Failure) -> None:
        self._failure = self._failure or failure

    def _a_child_was_cancelled(self) -> None:
        self._child_cancelled = True

    def _add_finished(self, done: Progress) -> None:
        limit = self.context.engine.failure_details
        self.state.finished = add_finished(self.state.finished, done, limit)

    # -- signals -------------------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        """Stop or restart starting work; pausing also stops chunks at their next heartbeat."""
        self._carry_out(self.control.pause() if paused else self.control.resume())
        if not paused:
            self.window.release()
            self.tuning.pacing.drop()  # a resumed job's pace starts again from now
        self._changed = True

    def steer(self, steering: Steering) -> None:
        """The job's new steering: in force for what the batch starts from now on (its
        window, its priority, its pace), and passed on to its children."""
        before = self.tuning.steering
        if self.tuning.steer(steering):
            self.window.reshare(self.tuning.window_share())
            if not paced_alike(steering, before):
                self.chunks.stop()  # they stop with what they did; the rest goes at the new rate
            self.children.steer()
            self._changed = True

    def _carry_out(self, steps: Steps) -> None:
        if steps.stop_chunks:
            self.chunks.stop()
        self.children.tell(steps.children)

    def child_progress(self, report: ProgressReport) -> None:
        """A child batch's progress."""
        if self.children.reported(report):
            self._changed = True

    def record_results(self, batch: TrackingBatch) -> None:
        """Results, progress and retries of this batch's forwarded items; a duplicate changes
        nothing. A run begun before signals carried progress replays them as it read them."""
        if self._tracked is None or (self._stopping and self.failed_items.enabled):
            return  # a batch that is stopping counts no more: its ledger has what it counted
        if batch.reports_progress and not workflow.patched(TRACKING_REPORTS_PATCH):
            batch = batch.model_copy(update={"failed_items": [], "progressed": [], "retried": []})
        before = (self._tracked.in_flight_percent, self._tracked.state.retries)
        limit = self.context.engine.failure_details
        self._add_settled(self._tracked.record(batch, limit, sent=self.window.taken))
        if (self._tracked.in_flight_percent, self._tracked.state.retries) != before:
            self._changed = True

    def _add_settled(self, settled: Settled) -> None:
        self.failed_items.add(settled.reported, settled.expired, settled.redriven)
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
        tracked, stopped = self._tracked, [*self.state.stopped, *self.children.stopped]
        return roll_up(
            self.state.finished,
            self.state.split,
            [*self.children.parts(), *carrying_on.stopped_parts(stopped)],
            self.state.pending,
            chunk_items=0 if self._in_flight_in_hand else self.chunks.items(),
            tracked=None if tracked is None else tracked.counts(),
            sub_batches_started=self._sub_batches_started(),
            waiting=self.window.waiting,
            limit=self.context.engine.failure_details,
        )

    def batches(self, request: BatchesRequest) -> BatchPage:
        """This batch and a page of its running children, by index: what a dashboard shows of
        one level of the tree. Reads only, for a query; failures are left out to keep it small.

        Ended children are counted from the cursor of started ones, which continue-as-new
        carries: it happens only when no child is out."""
        return self.children.page(
            request,
            self.state,
            self.progress().model_copy(update={"failures": []}),
            paused=self.paused,
            chunks=len(self.chunks),
            chunk_items=self.chunks.items(),
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
        self.failed_items.enabled = workflow.patched(FAILED_ITEMS_PATCH)
        try:
            if self.state.split is None:
                await self._fetch_sub_batches()
            while True:
                self._raise_on_failure()
                draining = workflow.info().get_current_history_length() > engine.history_limit
                if self.control.may_start() and not draining:
                    await self._start_work()
                    self._raise_on_failure()
                self.failed_items.start()
                idle = not self.children and not self.chunks and self.failed_items.idle
                if idle and self._done():
                    self.finished = True  # whatever comes now, its work is done
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
            and not self.state.stopped
        )

    def _timers(self) -> list[datetime]:
        """When the loop must wake without news: an overdue result, a retry for the broker."""
        timers = []
        if self._tracked is not None and (deadline := self._tracked.next_deadline()):
            timers.append(deadline)
        if self.control.may_start() and (wake_at := self.window.wake_at(workflow.now())):
            timers.append(wake_at)
        if self.control.may_start() and (slot_at := self.tuning.pacing.wake_at(workflow.now())):
            timers.append(slot_at)
        return timers

    def _done(self) -> bool:
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
        steering = self.tuning.steering
        return self.request.model_copy(
            update={"paused": self.paused, "state": self.state, "steering": steering}
        )

    def _chunk_room(self) -> int:
        """Items the next chunk may carry: for a queue, what the in-flight window leaves."""
        out = self.chunks.items()
        if self._tracked is not None:
            out += self._tracked.outstanding
        return self.window.room(workflow.now(), out)

    async def _start_work(self) -> None:
        engine = self.context.engine
        split = self.state.split
        assert split is not None
        while len(self.children) < self.tuning.budget.batch_window(split.sub_batch_total):
            budget = self.tuning.budget.child_budget(split.sub_batch_total)
            if self.state.stopped:  # children carry on first, where they stood
                stopped = self.state.stopped.pop(0)
                self.children.start(
                    stopped.index, stopped.sub_batch, budget=budget, stopped=stopped
                )
                continue
            if not self.state.pending:
                if self.state.sub_batches_fetched >= split.sub_batch_total:
                    break
                await self._fetch_sub_batches()
                self._raise_on_failure()
                if not self.control.may_start():
                    return  # paused while it split
                continue
            index = self.state.next_sub_batch + 1
            sub_batch = self.state.pending.pop(0)
            self.state.next_sub_batch = index
            self.children.start(index, sub_batch, budget=budget)
        pacing = self.tuning.pacing
        while len(self.chunks) < engine.chunk_window:
            room, steering = self._chunk_room(), self.tuning.steering
            if steering.paced:
                paced = await pacing.room(room, steering, self.window.undispatched())
                self._raise_on_failure()
                if not self.control.may_start() or steering != self.tuning.steering:
                    return  # paused or tuned while it took a slot
                room = min(paced, self._chunk_room())
            span = self.window.take(room)
            if span is None:
                break
            self.chunks.start(
                *span,
                sub_batch_total=split.sub_batch_total,
                pace=pacing.use(span[1] - span[0]) if steering.paced else None,
                amqp_priority=self.tuning.amqp_priority(),
            )

    async def _fetch_sub_batches(self) -> None:
        split = self.state.split
        await fetch_sub_batches(
            self.request, self.state, retry_policy=self._retry_policy, priority=self.tuning.priority
        )
        if split is None:
            self._track_items()

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stop_everything(self) -> None:
        """Cancel every child and chunk still out, and wait until they have stopped; then
        write what the batch counted to the ledger, so that its counts and its ledger agree,
        and where it stood, for a redrive to carry on from (:mod:`.carrying_on`)."""
        self._stopping = True
        self._carry_out(self.control.cancel())
        await self._settle()
        while not self.failed_items.idle:
            self.failed_items.start()
            await self._settle()
        if workflow.patched(CHECKPOINT_PATCH):
            stopped = carrying_on.stopped_state(self.state, self._tracked, self.children.stopped)
            await carrying_on.keep(self.request, stopped, priority=self.tuning.priority)

    async def _settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
