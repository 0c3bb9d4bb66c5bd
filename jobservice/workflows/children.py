"""A batch's sub-batches, each a child workflow: started within the window, told to pause,
resume or stop, and their reports kept until they end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import (
    FailureError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import (
        BatchesRequest,
        BatchInput,
        BatchPage,
        BatchState,
        JobContext,
        Progress,
        ProgressReport,
        RunningBatch,
        StoppedChild,
        SubBatch,
    )
    from jobservice.execution.names import (
        BATCH_WORKFLOW,
        KEPT_RESULTS_PATCH,
        PAUSE_SIGNAL,
        RESUME_SIGNAL,
        STEER_SIGNAL,
        TRACKING_REPORTS_PATCH,
    )
    from jobservice.jobs.job import Failure
    from jobservice.jobs.steering import Steering
    from jobservice.jobs.taskids import workflow_id
    from jobservice.workflows.control import BatchControl, Command
    from jobservice.workflows.failures import failure_from_error
    from jobservice.workflows.kept import result_kept

STOPPING_CHILD_WAITS = 30
"""Seconds a child that carries on waits at most for its last run to close."""

Spawn = Callable[[Awaitable[Any]], "asyncio.Future[Any]"]
"""Runs a coroutine as a task of the batch, which waits for all of them before it ends."""


@dataclass(eq=False)
class Child:
    sub_batch: SubBatch
    handle: workflow.ChildWorkflowHandle[Any, Progress] | None = None
    task: asyncio.Future[Any] | None = None
    latest: Progress | None = None
    steering: Steering | None = None
    """The job's steering as the child was started with it, or last told it."""


class ChildBatches:
    """The running children of one batch, by index. What becomes of them goes back through
    ``finished`` (a child's final counts), ``failed``, ``cancelled`` and ``changed``; a
    child that did not finish stays in ``stopped``, with what it last reported."""

    def __init__(
        self,
        context: JobContext,
        path: list[int],
        control: BatchControl,
        spawn: Spawn,
        *,
        priority: Callable[[], Priority],
        steering: Callable[[], Steering],
        finished: Callable[[Progress], None],
        failed: Callable[[Failure], None],
        cancelled: Callable[[], None],
        changed: Callable[[], None],
    ) -> None:
        self._context = context
        self._path = path
        self._control = control
        self._spawn = spawn
        self._priority = priority
        self._steering = steering
        self._finished = finished
        self._failed = failed
        self._cancelled = cancelled
        self._changed = changed
        self.running: dict[int, Child] = {}
        self.stopped: list[StoppedChild] = []
        """Children that ended without finishing (stopped, or failed): the batch stops too,
        and a redrive starts them again from where they stood."""

    def __len__(self) -> int:
        return len(self.running)

    def start(
        self, index: int, sub_batch: SubBatch, *, budget: int, stopped: StoppedChild | None = None
    ) -> None:
        """Start sub-batch ``index``, paused if the batch is, with ``budget``; a ``stopped``
        child carries on from where it stood, what it had reported counted meanwhile."""
        child = Child(sub_batch, latest=stopped.progress if stopped else None)
        self.running[index] = child
        paused = self._control.child_starting(index)
        child.task = self._spawn(self._run(index, child, paused, budget, stopped is not None))

    def tell(self, commands: dict[int, Command]) -> None:
        """Carry out what the control says the children must be told."""
        for index, command in commands.items():
            child = self.running[index]
            if command is Command.CANCEL:
                if child.task is not None:
                    child.task.cancel()
            elif child.handle is not None:
                self._spawn(self._signal(child.handle, command))

    def steer(self) -> None:
        """Pass the job's new steering on to every running child that has not had it; one
        still starting has it once it has started."""
        steering = self._steering()
        for child in self.running.values():
            if child.handle is not None and child.steering != steering:
                child.steering = steering
                self._spawn(self._tell_steering(child.handle, steering))

    async def _tell_steering(
        self, handle: workflow.ChildWorkflowHandle[Any, Progress], steering: Steering
    ) -> None:
        with contextlib.suppress(FailureError):  # it has just ended
            await handle.signal(STEER_SIGNAL, steering)

    def reported(self, report: ProgressReport) -> bool:
        """A child's progress report; whether it is of a running child. A run begun before
        reports carried the in-flight percentage and retries reads them as it did then: as
        none."""
        child = self.running.get(report.index)
        if child is None:
            return False
        progress = report.progress
        if (progress.in_flight_percent or progress.retries) and not workflow.patched(
            TRACKING_REPORTS_PATCH
        ):
            progress = progress.model_copy(update={"in_flight_percent": 0, "retries": 0})
        child.latest = progress
        return True

    def parts(self) -> list[tuple[SubBatch, Progress | None]]:
        """Each running child's sub-batch and last report, for the roll-up."""
        return [(child.sub_batch, child.latest) for child in self.running.values()]

    def page(
        self,
        request: BatchesRequest,
        state: BatchState,
        progress: Progress,
        *,
        paused: bool,
        chunks: int,
        chunk_items: int,
    ) -> BatchPage:
        """The batch (its ``state`` and ``progress``) and a page of its running children, by
        index. Ended children are counted from the cursor of started ones, which
        continue-as-new carries: it happens only when no child is out."""
        split, running = state.split, self.running
        start = max(0, request.offset)
        page = sorted(running)[start : start + max(0, request.limit)]
        return BatchPage(
            progress=progress,
            paused=paused,
            running=[self.running_batch(index) for index in page],
            running_total=len(running),
            finished_children=state.next_sub_batch - len(running),
            pending=len(state.pending),
            more_pending=split is None or state.sub_batches_fetched < split.sub_batch_total,
            sub_batch_total=split.sub_batch_total if split else None,
            chunks=chunks,
            chunk_items=chunk_items,
        )

    def running_batch(self, index: int) -> RunningBatch:
        child, context = self.running[index], self._context
        latest = child.latest
        return RunningBatch(
            index=index,
            workflow_id=workflow_id(context.partition, context.job_id, [*self._path, index]),
            progress=latest.model_copy(update={"failures": []}) if latest else None,
            estimate=child.sub_batch.estimate,
            paused=self._control.told_paused(index),
        )

    async def _signal(
        self, handle: workflow.ChildWorkflowHandle[Any, Progress], command: Command
    ) -> None:
        # A child that has just ended has nothing left to pause or resume.
        with contextlib.suppress(FailureError):
            await handle.signal(PAUSE_SIGNAL if command is Command.PAUSE else RESUME_SIGNAL)

    async def _start(
        self, request: BatchInput, *, carries_on: bool
    ) -> workflow.ChildWorkflowHandle[Any, Progress]:
        """Start a child batch. One that carries on where it stopped may find its last run
        still closing (its parent stopped while it was starting): it waits for it a while."""
        context = request.context
        waits = 0
        while True:
            try:
                return await workflow.start_child_workflow(
                    BATCH_WORKFLOW,
                    request,
                    id=workflow_id(context.partition, context.job_id, request.path),
                    result_type=Progress,
                    parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                    priority=self._priority(),
                )
            except WorkflowAlreadyStartedError:
                waits += 1
                if not carries_on or waits > STOPPING_CHILD_WAITS:
                    raise
                await workflow.sleep(timedelta(seconds=1))

    async def _run(
        self, index: int, child: Child, paused: bool, budget: int, carries_on: bool
    ) -> None:
        context = self._context
        path = [*self._path, index]
        final: Progress | None = None
        try:
            request = BatchInput(
                context=context,
                path=path,
                definition=child.sub_batch.definition,
                paused=paused,
                budget=budget,
                carries_on=carries_on,
                steering=self._steering(),
            )
            child.steering = request.steering
            handle = await self._start(request, carries_on=carries_on)
            child.handle = handle
            # A pause, a cancel or new steering that came while the child was starting
            # reaches it now.
            command = self._control.child_started(index)
            if command is not None:
                self.tell({index: command})
            self.steer()
            final = await handle
        except asyncio.CancelledError:
            # It may have completed in the moment it was cancelled (see .kept).
            if workflow.patched(KEPT_RESULTS_PATCH):
                final = result_kept(child.handle, Progress)
            raise
        except Exception as error:
            if is_cancelled_exception(error):
                self._cancelled()
            else:
                task_id = context.task_id(path)
                self._failed(failure_from_error(error, task_id, f"batch {task_id}"))
        finally:
            # A child that did not finish stands as it last reported: a cancelled batch
            # reports its final counts just before it closes.
            if final is not None:
                self._finished(final)
            else:
                self.stopped.append(
                    StoppedChild(index=index, sub_batch=child.sub_batch, progress=child.latest)
                )
            self._control.child_ended(index)
            del self.running[index]
            self._changed()
