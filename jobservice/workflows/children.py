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
        BatchInput,
        JobContext,
        Progress,
        RunningBatch,
        StoppedChild,
        SubBatch,
    )
    from jobservice.execution.names import (
        BATCH_WORKFLOW,
        KEPT_RESULTS_PATCH,
        PAUSE_SIGNAL,
        RESUME_SIGNAL,
    )
    from jobservice.jobs.job import Failure
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
        priority: Priority,
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

    def reported(self, index: int, progress: Progress) -> None:
        """A running child's progress report."""
        self.running[index].latest = progress

    def parts(self) -> list[tuple[SubBatch, Progress | None]]:
        """Each running child's sub-batch and last report, for the roll-up."""
        return [(child.sub_batch, child.latest) for child in self.running.values()]

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
                    priority=self._priority,
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
            )
            handle = await self._start(request, carries_on=carries_on)
            child.handle = handle
            # A pause or a cancel that came while the child was starting reaches it now.
            command = self._control.child_started(index)
            if command is not None:
                self.tell({index: command})
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
