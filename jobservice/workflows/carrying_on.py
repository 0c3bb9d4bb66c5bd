"""Where a stopped batch stood, and a redrive's batch carrying on from there.

A batch that stops (its job cancelled, or failed) writes, once its chunks and children have
stopped, the state it would carry across continue-as-new with everything it had out taken
back: its chunks' items are in its retry ranges already; items out on a queue without a
result join them, to be sent again with their own task ids; children that were running are
listed, each with what it last reported (which the batch's counts hold as such, not among its
finished ones), to be started again from where each of them stood. A redrive of a job that had
not reached every item starts its tree from these, and so runs exactly what the job had not
done.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import (
        BatchInput,
        BatchState,
        Checkpoint,
        ControlState,
        Progress,
        StoppedChild,
        SubBatch,
        WindowState,
    )
    from jobservice.execution.names import KEEP_CHECKPOINT, LOAD_CHECKPOINT
    from jobservice.workflows.failures import DATABASE_RETRY, raise_if_cancelled
    from jobservice.workflows.tracked import TrackedItems


def stopped_state(
    state: BatchState, tracked: TrackedItems | None, stopped: list[StoppedChild]
) -> BatchState:
    """What a batch that has stopped writes: ``state`` with what it had out taken back, and
    ``stopped``, the children that were running, to start again."""
    retry = list(state.retry_ranges)
    tracking = None
    if tracked is not None:
        retry += tracked.take_back()
        tracking = tracked.snapshot()
    return state.model_copy(
        update={
            "retry_ranges": _merged(retry),
            "tracking": tracking,
            "control": ControlState(),
            "window": WindowState(),
            "stopped": [*state.stopped, *(_quiet(child, failures=False) for child in stopped)],
            "failed_reported": [],
            "failed_expired": [],
            "redriven": [],
        }
    )


def stopped_parts(stopped: Iterable[StoppedChild]) -> list[tuple[SubBatch, Progress | None]]:
    """Stopped children as parts of their parent's roll-up: as they last reported, with
    nothing in flight, and a child stopped before it had split counted at its estimate."""
    return [(child.sub_batch, _quiet(child).progress) for child in stopped]


async def keep(request: BatchInput, state: BatchState, *, priority: Priority) -> None:
    """Write where the batch stood as it stopped; a redrive's batch of failed items has
    nothing to carry on."""
    if request.context.sends_failed_items:
        return
    await workflow.execute_activity(
        KEEP_CHECKPOINT,
        _checkpoint(request, state),
        start_to_close_timeout=timedelta(seconds=60),
        retry_policy=DATABASE_RETRY,
        priority=priority,
    )


async def load(request: BatchInput, *, priority: Priority) -> BatchState | None:
    """Where the batch stood when its job stopped; None if it had not written it. Cancelled
    meanwhile, it raises CancelledError: the batch stands as it stood."""
    try:
        loaded: Checkpoint = await workflow.execute_activity(
            LOAD_CHECKPOINT,
            _checkpoint(request, None),
            result_type=Checkpoint,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=DATABASE_RETRY,
            priority=priority,
        )
    except ActivityError as error:
        raise_if_cancelled(error)
        raise
    return loaded.state


def _checkpoint(request: BatchInput, state: BatchState | None) -> Checkpoint:
    context = request.context
    return Checkpoint(
        partition=context.partition, job_id=context.job_id, path=request.path, state=state
    )


def _quiet(child: StoppedChild, *, failures: bool = True) -> StoppedChild:
    """A stopped child's last report as it stands once stopped: nothing in flight, and at
    least its estimate until it has split; without failure details for a checkpoint (its
    own counts them)."""
    progress = child.progress
    if progress is None:
        return child
    update: dict[str, object] = {"in_flight": 0, "in_flight_percent": 0, "waiting": None}
    if not progress.splitting_complete:
        update["total"] = max(progress.total, child.sub_batch.estimate or 0)
    if not failures:
        update["failures"] = []
    return child.model_copy(update={"progress": progress.model_copy(update=update)})


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
