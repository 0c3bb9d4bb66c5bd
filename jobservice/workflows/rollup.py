"""A batch's rolled-up progress: its own finished counts, what its children last reported,
and what is in flight. Pure: given the parts, the same counts every time, as replay needs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import Progress, SplitResult, SubBatch


@dataclass(frozen=True)
class TrackedCounts:
    """What the tracking of a batch's queued items adds: items published and not yet settled,
    the percentages workers reported for them, and the retries they reported."""

    outstanding: int
    percent: int
    retries: int


def add_finished(finished: Progress, done: Progress, limit: int) -> Progress:
    """``finished`` with ``done`` added: counts summed, failures kept up to ``limit``."""
    return Progress(
        total=finished.total + done.total,
        completed=finished.completed + done.completed,
        failed=finished.failed + done.failed,
        retries=finished.retries + done.retries,
        failures=(finished.failures + done.failures)[:limit],
    )


def roll_up(
    finished: Progress,
    split: SplitResult | None,
    children: Iterable[tuple[SubBatch, Progress | None]],
    pending: Iterable[SubBatch],
    *,
    chunk_items: int,
    tracked: TrackedCounts | None,
    sub_batches_started: bool,
    waiting: str | None,
    limit: int,
) -> Progress:
    """The counts of a batch and everything below it. ``finished``: what has ended (its chunks,
    its ended children); ``children``: each running child's sub-batch and last report (None
    before its first: its estimate stands in); ``pending``: sub-batches not started yet;
    ``chunk_items``: items of chunks out, counted in flight (a run begun before items in a
    handler's hands were counted by their worker); ``tracked``: items out to a queue."""
    total = finished.total + (split.item_total if split else 0)
    completed, failed = finished.completed, finished.failed
    retries = finished.retries
    # In flight: items published to a queue and not yet settled. Items of a chunk that is
    # scheduled or running are not (chunk_items is 0 but in a run begun before that): a
    # running local chunk has one item in a handler's hands, which only its worker knows and
    # says (jobservice.activities.in_hand).
    in_flight = chunk_items
    percent = 0
    if tracked is not None:
        in_flight += tracked.outstanding
        percent = tracked.percent
        retries += tracked.retries
    failures = list(finished.failures)
    complete = sub_batches_started
    for sub_batch, latest in children:
        if latest is None:
            total += sub_batch.estimate or 0
            complete = False
            continue
        total += latest.total
        completed += latest.completed
        failed += latest.failed
        in_flight += latest.in_flight
        percent += latest.in_flight_percent
        retries += latest.retries
        failures.extend(latest.failures[: max(0, limit - len(failures))])
        complete = complete and latest.splitting_complete
        waiting = waiting or latest.waiting
    total += sum(s.estimate or 0 for s in pending)
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
