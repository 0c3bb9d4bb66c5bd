"""Recording a batch's reports in its workflow: one signal for many results, the results of
items the batch never sent refused, and each recorded result passed on to the queue its
``to`` names."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jobservice.db.failures import FailedItem, FailureLedger
from jobservice.execution.names import ITEMS_MEMO, TRACKING_SIGNAL
from jobservice.jobs.taskids import parse_job_task_id
from jobservice.metrics import TRACKING_ENDED_BATCH_REPORTS, TRACKING_REPORTS
from jobservice.rabbitmq.broker import (
    LINK_ERRORS,
    BrokerUnavailableError,
    TargetQueueMissingError,
)
from jobservice.tracking.gathered import BatchReports, Delivery
from jobservice.tracking.holding import Forwarding, HoldingDelayedError
from jobservice.tracking.reports import MESSAGE_LIMIT, Report, Status

_log = logging.getLogger(__name__)
_PERMANENT = {RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION}
"""What Temporal answers for a signal it will never take, however often it is sent."""
_NUMBERS_CACHED = 16_384


@dataclass(frozen=True)
class _Numbers:
    """The item numbers a batch sent to a queue: ``first`` to ``last``; none when empty."""

    first: int
    last: int

    def __contains__(self, number: object) -> bool:
        return isinstance(number, int) and self.first <= number <= self.last


class BatchRecorder:
    """Records gathered reports in their batches' workflows, and forwards what they pass on."""

    def __init__(
        self, client: Client, forwarding: Forwarding, ledger: FailureLedger | None = None
    ) -> None:
        self._client = client
        self._forwarding = forwarding
        self._ledger = ledger or FailureLedger(None)
        self._numbers: dict[str, _Numbers] = {}

    async def record(self, batch_workflow: str, batch: BatchReports) -> list[Delivery] | None:
        """Signal a batch's reports; returns the messages behind them, each report recorded or
        refused, or None when Temporal is busy or away and the reports are to be tried again.
        Reports for items the batch never sent are refused, each with its reason, and so are
        reports Temporal will never take."""
        deliveries = list(batch.deliveries)
        try:
            await self._signal(batch_workflow, batch)
        except RPCError as exc:
            if exc.status not in _PERMANENT:
                return None  # Temporal is busy or away: try again
            batch.refuse(f"Temporal refused the result: {exc.message}")
        except HoldingDelayedError as exc:
            _log.warning("%s; trying again", exc)
            return None  # held, not yet counted: record and hold again (counted once)
        except DBAPIError as exc:
            _log.warning("cannot write failed items to the job database, trying again: %s", exc)
            return None  # not signalled yet: nothing was counted
        except (BrokerUnavailableError, *LINK_ERRORS):
            raise
        except Exception as exc:  # whatever else these reports make go wrong
            batch.refuse(f"could not be recorded: {describe(exc)}")
        return deliveries

    async def _signal(self, batch_workflow: str, batch: BatchReports) -> None:
        try:
            numbers = await self._numbers_of(batch_workflow)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await self._no_batch(batch)
            return
        if numbers is not None:
            await self._drop_outside(batch_workflow, batch, numbers)
        if not batch.reports:
            return
        await self._report_failures(batch)
        handle = self._client.get_workflow_handle(batch_workflow)
        try:
            for signal in batch.signals():
                await handle.signal(TRACKING_SIGNAL, signal)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            TRACKING_ENDED_BATCH_REPORTS.inc(len(batch.reports))  # it has all it will take
            await self._not_passed_on(batch)
            batch.recorded()
            return
        for status, count in Counter(report.status for report in batch.reports).items():
            TRACKING_REPORTS.labels(status.value).inc(count)
        await self._forward(batch)
        batch.recorded()

    async def _report_failures(self, batch: BatchReports) -> None:
        """Put the failures reported in the ledger before the batch counts them: once it has,
        each counted failure's row is there to be marked."""
        now = datetime.now(UTC)
        failed = [
            FailedItem.of(report.failure.model_copy(update={"failure_id": report.task_id}))
            if report.failure is not None
            else FailedItem(report.task_id, now, "worker", "its worker reported it failed")
            for report in batch.reports
            if report.status is Status.FAILED
        ]
        if failed:
            partition_id, job_id, _ = parse_job_task_id(failed[0].task_id)
            await self._ledger.report((partition_id, job_id), failed, round_=batch.round)

    async def _drop_outside(
        self, batch_workflow: str, batch: BatchReports, numbers: _Numbers
    ) -> None:
        """Refuse the reports for numbers the batch never sent; a number outside what was
        cached is checked again first (a job deleted and submitted anew splits anew)."""
        if all(report.number in numbers for report in batch.reports):
            return
        self._numbers.pop(batch_workflow, None)
        numbers = await self._numbers_of(batch_workflow) or numbers
        for report, delivery in batch.split_off(lambda r: r.number in numbers):
            delivery.refuse(report, _outside(report, numbers))

    async def _forward(self, batch: BatchReports) -> None:
        """Pass results on to the queues their ``to`` names, as their job's status allows
        (:mod:`jobservice.tracking.holding`); a result one cannot take is refused (it is
        counted all the same), to be passed on from the dead-letter queue by hand."""
        refused: set[int] = set()
        forwards = batch.forwards()
        if not forwards:
            return
        partition_id, job_id, _ = parse_job_task_id(batch.reports[0].task_id)
        for queue, pairs in forwards.items():
            try:
                await self._forwarding.pass_on(
                    (partition_id, job_id), queue, [d.message.body for _, d in pairs]
                )
            except TargetQueueMissingError as exc:
                for report, delivery in pairs:
                    delivery.refuse(report, f"could not forward to {queue!r}: {exc}")
                    refused.add(id(report))
        if refused:
            batch.split_off(lambda report: id(report) not in refused)

    async def _not_passed_on(self, batch: BatchReports) -> None:
        """Results for a batch that has ended go nowhere: counted as dropped on their job."""
        forwards = sum(len(pairs) for pairs in batch.forwards().values())
        if forwards:
            partition_id, job_id, _ = parse_job_task_id(batch.reports[0].task_id)
            await self._forwarding.drop((partition_id, job_id), forwards)

    async def _numbers_of(self, batch_workflow: str) -> _Numbers | None:
        """The item numbers a batch sent to a queue, as its workflow's memo says, cached; None
        before it has split, and for batches started before batches named them."""
        known = self._numbers.get(batch_workflow)
        if known is not None:
            return known
        description = await self._client.get_workflow_handle(batch_workflow).describe()
        memo = await description.memo_value(ITEMS_MEMO, None)
        if not (isinstance(memo, list) and len(memo) == 2):
            return None
        numbers = _Numbers(int(memo[0]), int(memo[1]))
        if len(self._numbers) >= _NUMBERS_CACHED:
            self._numbers.clear()
        self._numbers[batch_workflow] = numbers
        return numbers

    async def _no_batch(self, batch: BatchReports) -> None:
        """Reports for a batch workflow that does not exist: of an unknown job, or naming a
        batch the job never had. All refused."""
        try:
            await self._client.get_workflow_handle(batch.job_workflow).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            batch.refuse(f"unknown job {batch.job_workflow!r}")
            return
        task_id = batch.reports[0].task_id
        job, _, _ = task_id.partition(".")
        batch.refuse(f"job {job} has no batch {task_id.rpartition('.')[0]!r}")


def _outside(report: Report, numbers: _Numbers) -> str:
    batch = report.task_id.rpartition(".")[0]
    if numbers.last < numbers.first:
        return f"no item {report.number} in batch {batch!r}: it sent no items to a queue"
    return (
        f"no item {report.number} in batch {batch!r}: its items sent to a queue are numbered "
        f"{numbers.first} to {numbers.last}"
    )


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:MESSAGE_LIMIT]}" if text else type(exc).__name__
