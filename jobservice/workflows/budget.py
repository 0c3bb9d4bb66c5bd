"""How much of the job's capacity a batch may use: how many child batches it runs at once,
what budget each of them gets, and its subtree's share of the job's in-flight window. Pure
arithmetic on the engine settings."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.settings import EngineSettings

MIN_QUEUE_SHARE = 500
"""The least of a job's in-flight window a batch sending items to a queue runs with."""


@dataclass(frozen=True)
class Budget:
    """The capacity of one batch's subtree: ``batches`` of the job's ``batch_budget``, for
    items that go to a queue (``queue``) or to a handler in the worker."""

    engine: EngineSettings
    batches: int
    queue: bool
    window: int
    """The job's in-flight window: its own, or the engine's."""

    @classmethod
    def of(
        cls, engine: EngineSettings, given: int | None, *, queue: bool, window: int | None = None
    ) -> Budget:
        """The budget a batch was given by its parent; the whole job's when none was."""
        return cls(engine, given or engine.batch_budget, queue, window or engine.in_flight_window)

    def window_share(self) -> int:
        """This subtree's share of the job's in-flight window."""
        return max(1, self.window * self.batches // self.engine.batch_budget)

    def batch_window(self, sub_batch_total: int) -> int:
        """Children at once: no more than the window, the budget, or the sub-batches there are."""
        window = min(self.engine.batch_window, self.batches, sub_batch_total)
        if self.queue:
            # Items to a queue: fewer batches at once, each with a share of the in-flight
            # window worth a chunk, rather than many that trickle a few items each.
            window = min(window, self.window_share() // MIN_QUEUE_SHARE)
        return max(1, window)

    def child_budget(self, sub_batch_total: int) -> int:
        """The budget each child batch is started with."""
        return max(1, self.batches // self.batch_window(sub_batch_total))
