"""A job's steering as one batch applies it: the priority its tasks go under, its share of the
job's capacity (the in-flight window among them) and its pace. Set from what the batch was
started with, and changed when the job is tuned (see ``jobservice.jobs.steering``)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import BatchInput, WindowState
    from jobservice.jobs.pipes import is_local_pipe
    from jobservice.jobs.steering import Steering
    from jobservice.workflows.budget import Budget
    from jobservice.workflows.options import task_priority
    from jobservice.workflows.pacing import Pacing


class Tuning:
    """What the steering of the job makes of one batch; ``window``: the batch's window state,
    where its pace keeps the slot it took."""

    def __init__(self, request: BatchInput, window: WindowState) -> None:
        self._request = request
        self.queue = not is_local_pipe(request.context.target_pipe)
        """Whether the batch's items go to a queue, rather than to a handler in the worker."""
        self.pacing = Pacing(request.context, window)
        self._apply(request.steering or request.context.submitted_steering())

    def _apply(self, steering: Steering) -> None:
        context = self._request.context
        engine = context.engine
        self.steering = steering
        self.priority = task_priority(context, steering.priority)
        self.budget = Budget.of(
            engine,
            self._request.budget,
            queue=self.queue,
            window=steering.window(engine.in_flight_window),
        )

    def steer(self, steering: Steering) -> bool:
        """Apply the job's new ``steering``; whether it changed anything. The pace starts
        again from now, at the new rate: the slot the batch held is given up."""
        if steering == self.steering:
            return False
        self._apply(steering)
        self.pacing.drop()
        return True

    def window_share(self) -> int | None:
        """The batch's share of the job's in-flight window; None for a local pipe."""
        return self.budget.window_share() if self.queue else None

    def amqp_priority(self) -> int | None:
        """The priority the batch's task messages are published with; None for a local pipe."""
        return self.steering.amqp_priority() if self.queue else None


def paced_alike(steering: Steering, other: Steering) -> bool:
    """Whether chunks keep to the same pace under both: the job's own rate, and its pipe's
    limit and deal of shares."""
    return _pace_of(steering) == _pace_of(other)


def _pace_of(steering: Steering) -> tuple[float | None, float | None, int]:
    return steering.rate_limit, steering.pipe_limit, steering.pipe_epoch
