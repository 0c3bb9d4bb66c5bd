"""The items of a batch sent to a queue that it counted failed, on their way to the job's
failed-item ledger: one ``count_failed_items`` activity at a time writes all that gathered
while the last one ran, so a burst of results costs an activity, not one per item.

The indexes wait in the batch's state (continue-as-new carries them), and the batch does not
end before they are written: a batch that has ended has its failures in the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import BatchInput, BatchState, FailedItemsInput
    from jobservice.execution.names import COUNT_FAILED_ITEMS
    from jobservice.workflows.children import Spawn

MOST_ITEMS = 5_000
"""Most items one activity writes: its input stays far below Temporal's payload limit."""

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
"""Tried until the job database takes them: the batch waits, it does not lose them."""


class FailedItemRecording:
    """Writes the failed items a batch counted to the ledger, one activity at a time."""

    def __init__(
        self,
        request: BatchInput,
        state: BatchState,
        spawn: Spawn,
        *,
        priority: Callable[[], Priority],
        changed: Callable[[], None],
    ) -> None:
        self._request = request
        self._state = state
        self._spawn = spawn
        self._priority = priority
        self._changed = changed
        self.running = False
        self.enabled = False
        """Set once the run knows it was begun with the ledger (FAILED_ITEMS_PATCH)."""

    def add(self, reported: list[int], expired: list[int], completed: list[int]) -> None:
        """Items just counted failed, and in a redrive those that completed."""
        if reported or expired or completed:
            self._state.failed_reported.extend(reported)
            self._state.failed_expired.extend(expired)
            self._state.redriven.extend(completed)
            self._changed()

    def _lists(self) -> tuple[list[int], list[int], list[int]]:
        state = self._state
        return state.failed_reported, state.failed_expired, state.redriven

    @property
    def idle(self) -> bool:
        """Nothing to write, and nothing being written."""
        return not self.running and not any(self._lists())

    def start(self) -> None:
        """Start writing what has gathered, unless a write is under way."""
        lists = self._lists()
        if self.running or not any(lists):
            return
        if not self.enabled:  # a run begun before the ledger: as it did then, nothing
            for waiting in lists:
                waiting.clear()
            return
        taken: list[list[int]] = []
        room = MOST_ITEMS
        for waiting in lists:
            taken.append(waiting[:room])
            del waiting[:room]
            room -= len(taken[-1])
        self.running = True
        self._spawn(self._write(*taken))

    async def _write(self, reported: list[int], expired: list[int], completed: list[int]) -> None:
        request = self._request
        split = self._state.split
        assert split is not None
        try:
            await workflow.execute_activity(
                COUNT_FAILED_ITEMS,
                FailedItemsInput(
                    context=request.context,
                    path=request.path,
                    definition=request.definition,
                    sub_batch_total=split.sub_batch_total,
                    reported=reported,
                    expired=expired,
                    completed=completed,
                ),
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=_RETRY,
                priority=self._priority(),
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            workflow.logger.exception("failed items of a batch were not written to the ledger")
        finally:
            self.running = False
            self._changed()
