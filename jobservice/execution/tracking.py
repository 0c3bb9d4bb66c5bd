"""What the tracking consumer signals to a batch, and what the batch keeps of it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Base64Bytes, BaseModel, Field

from jobservice.jobs.job import Failure


class TrackedResult(BaseModel):
    """One result, as signals of earlier versions carried them (see ``TrackingBatch``)."""

    number: int
    failed: bool = False
    failure: Failure | None = None


class TrackingBatch(BaseModel):
    """What the tracking consumer signals to one batch in one go: the numbers (in the batch) of
    the items that completed and of those that failed, the details of the first few failures,
    and the progress and retries of items still in flight. Bare numbers keep a signal of
    thousands small."""

    completed: list[int] = Field(default_factory=list)
    failed: list[int] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    failed_items: list[int] = Field(default_factory=list)
    """The number of the item each of ``failures`` is of. Empty in signals of earlier versions,
    whose failures' ids name their items; a worker's own failure id need not."""
    progressed: list[tuple[int, int]] = Field(default_factory=list)
    """(number, percentage) of items in flight: the last estimate of each, in whole percent."""
    retried: list[tuple[int, int | None]] = Field(default_factory=list)
    """(number, attempt) of items a worker tries again; None when it did not say which try."""
    results: list[TrackedResult] = Field(default_factory=list)
    """The form of earlier versions, still read when a workflow's history replays."""

    @property
    def reports_progress(self) -> bool:
        """Whether the signal says more than earlier versions could, see TRACKING_REPORTS_PATCH."""
        return bool(self.failed_items or self.progressed or self.retried)

    def numbers(self) -> tuple[list[int], list[int], list[tuple[int | None, Failure]]]:
        """Completed numbers, failed numbers and failure details with the number of the item
        each is of (None when the failure's id must tell), whichever form was sent."""
        completed, failed = list(self.completed), list(self.failed)
        owners: list[int | None] = list(self.failed_items)
        owners += [None] * (len(self.failures) - len(owners))
        failures = list(zip(owners, self.failures, strict=False))
        for result in self.results:
            (failed if result.failed else completed).append(result.number)
            if result.failure is not None:
                failures.append((None, result.failure))
        return completed, failed, failures


class TrackingState(BaseModel):
    """A batch's items forwarded to a queue; see ``jobservice.workflows.tracked``."""

    forwarded: int = 0
    refused: int = 0
    settled: Base64Bytes = b""
    settled_count: int = 0
    awaiting: list[tuple[int, int, datetime]] = Field(default_factory=list)
    reported: dict[int, tuple[int, int]] = Field(default_factory=dict)
    """(percentage, retries) by index of the items in flight a worker has said something of;
    an item leaves it when it settles, so it holds no more than the in-flight window."""
    retries: int = 0
