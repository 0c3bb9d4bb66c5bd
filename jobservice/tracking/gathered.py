"""What the tracking consumer has gathered of a burst: reports by batch workflow, and the
messages behind them. A message may speak of items of several batches; it is settled, acked or
dead-lettered, only once each of its reports is recorded or refused. Pure: the consumer does the
signalling, acking and publishing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiormq.abc import DeliveredMessage

from jobservice.execution.tracking import TrackingBatch
from jobservice.jobs.job import Failure
from jobservice.tracking.reports import Reading, Report, Status, named

FAILURE_DETAILS = 20
"""Failure details one signal carries; the rest go as bare counts, to keep signals small."""
SIGNAL_REPORTS = 5_000
"""Most reports one signal carries, to keep it far below Temporal's payload limit."""


@dataclass(eq=False)
class Delivery:
    """A message from the tracking pipe, and what became of its reports so far."""

    message: DeliveredMessage
    reports: int
    """All the reports it carries, usable or not."""
    waiting: int
    """Its reports neither recorded nor refused yet."""
    refused: list[tuple[int | None, str]] = field(default_factory=list)
    """(position in ``trackingReports``, reason) of each report that cannot be recorded."""

    @classmethod
    def of(cls, message: DeliveredMessage, reading: Reading) -> Delivery:
        return cls(
            message,
            reports=len(reading.reports) + len(reading.unusable),
            waiting=len(reading.reports),
            refused=[(position, reason) for position, reason in reading.unusable],
        )

    @property
    def settled(self) -> bool:
        return self.waiting <= 0

    def recorded(self) -> None:
        self.waiting -= 1

    def refuse(self, report: Report, reason: str) -> None:
        self.refused.append((report.position, reason))
        self.waiting -= 1

    @property
    def reason(self) -> str:
        """Why the reports it refused could not be recorded."""
        return "; ".join(named(position, reason) for position, reason in self.refused)

    def reason_in(self, positions: list[int]) -> str:
        """The reason, naming each refused report by its place among ``positions``: as it
        stands in the copy that carries only those."""
        place = {position: at for at, position in enumerate(positions)}
        return "; ".join(
            named(None if position is None else place.get(position, position), reason)
            for position, reason in self.refused
        )

    @property
    def partly_recorded(self) -> bool:
        """Whether some of its reports were recorded and some not: what goes to the dead-letter
        queue is then a copy with only the others."""
        return 0 < len(self.refused) < self.reports


@dataclass
class BatchReports:
    """Reports waiting to be recorded in one batch workflow, each with its message."""

    job_workflow: str
    reports: list[Report] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    round: int = 0
    """The job's redrive round the reports are of; 0: its first run."""

    def add(self, report: Report, delivery: Delivery) -> None:
        self.reports.append(report)
        self.deliveries.append(delivery)

    def pairs(self) -> Iterator[tuple[Report, Delivery]]:
        return zip(self.reports, self.deliveries, strict=True)

    def signals(self) -> list[TrackingBatch]:
        """The signals that record these reports, in the order they came."""
        return [
            _signal(self.reports[start : start + SIGNAL_REPORTS])
            for start in range(0, len(self.reports), SIGNAL_REPORTS)
        ]

    def recorded(self) -> None:
        for delivery in self.deliveries:
            delivery.recorded()

    def refuse(self, reason: str) -> None:
        for report, delivery in self.pairs():
            delivery.refuse(report, reason)

    def forwards(self) -> dict[str, list[tuple[Report, Delivery]]]:
        """The results to pass on, by the queue each names in ``to``."""
        by_queue: dict[str, list[tuple[Report, Delivery]]] = {}
        for report, delivery in self.pairs():
            if report.forward_to:
                by_queue.setdefault(report.forward_to, []).append((report, delivery))
        return by_queue

    def split_off(self, keep: Callable[[Report], bool]) -> list[tuple[Report, Delivery]]:
        """Keep the reports ``keep`` accepts; return the others."""
        kept: list[tuple[Report, Delivery]] = []
        rest: list[tuple[Report, Delivery]] = []
        for pair in self.pairs():
            (kept if keep(pair[0]) else rest).append(pair)
        self.reports = [r for r, _ in kept]
        self.deliveries = [d for _, d in kept]
        return rest

    def take_back(self, earlier: BatchReports) -> None:
        """Put the reports of an earlier attempt in front of these."""
        self.reports[:0] = earlier.reports
        self.deliveries[:0] = earlier.deliveries


def _signal(reports: list[Report]) -> TrackingBatch:
    """One signal of ``reports``: final results as bare numbers, the first few failures'
    details, and of each item still in flight its last percentage and its retries. What came
    of an item after its final result is left out: it changes nothing."""
    completed: list[int] = []
    failed: list[int] = []
    failures: list[Failure] = []
    failed_items: list[int] = []
    progressed: dict[int, int] = {}
    retried: list[tuple[int, int | None]] = []
    ended: set[int] = set()
    for report in reports:
        number = report.number
        if report.status is Status.COMPLETE:
            completed.append(number)
            ended.add(number)
        elif report.status is Status.FAILED:
            failed.append(number)
            ended.add(number)
            if report.failure and len(failures) < FAILURE_DETAILS and number not in failed_items:
                failures.append(report.failure)
                failed_items.append(number)
        elif number not in ended:
            progressed[number] = report.percent  # a retry starts the item over at its estimate
            if report.status is Status.RETRY:
                retried.append((number, report.attempt))
    return TrackingBatch(
        completed=completed,
        failed=failed,
        failures=failures,
        failed_items=failed_items,
        progressed=list(progressed.items()),
        retried=retried,
    )
