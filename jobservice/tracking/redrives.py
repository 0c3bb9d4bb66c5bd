"""Results of a job being redriven go to its redrive's batch.

A redrive sends the job's failed items again with their own task ids, so their results name
the batches of the job's first run, which have ended. While the job's row says it is in a
redrive round, its results are taken to the job's root workflow, where the round's one batch
runs, each numbered by the item's place in the round (from the failed-item ledger). A result
for an item the round does not send again is of a batch that has ended: counted as such, and
taken. While a redrive carries the job's tree on from where it stopped, its round's items are
not numbered yet: every result goes to its own batch, as of the round.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from jobservice.db.failures import FailureLedger
from jobservice.db.gate import JobGate
from jobservice.jobs.taskids import item_number, parse_job_task_id
from jobservice.metrics import TRACKING_ENDED_BATCH_REPORTS
from jobservice.tracking.gathered import BatchReports, Delivery

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Round:
    """A redriven job's round, and the positions in it of the items its reports name."""

    key: tuple[str, str]
    round: int
    positions: dict[str, int] | None
    """None while the round's items are not numbered: its tree is carrying on first."""


@dataclass
class Routed:
    """What :meth:`RedriveRouting.route` made of a burst."""

    pending: dict[str, BatchReports]
    """The reports to record, by batch workflow."""
    taken: list[Delivery]
    """Messages some of whose reports were taken without recording (of batches that ended)."""
    kept: dict[str, BatchReports]
    """Reports of jobs whose round cannot be read now: to be tried again."""


class RedriveRouting:
    """Takes the reports of jobs in a redrive round to their redrive's batch."""

    def __init__(self, gate: JobGate, ledger: FailureLedger) -> None:
        self._gate = gate
        self._ledger = ledger

    async def route(self, pending: dict[str, BatchReports]) -> Routed:
        """``pending`` with each redriven job's reports under its root workflow. Everything
        is read before any report is touched, so a burst tried again is routed afresh."""
        by_job: dict[str, list[str]] = defaultdict(list)
        for batch_workflow, batch in pending.items():
            by_job[batch.job_workflow].append(batch_workflow)
        rounds: dict[str, _Round | None] = {}
        routed = Routed(dict(pending), [], {})
        for job_workflow, batch_workflows in by_job.items():
            try:
                rounds[job_workflow] = await self._round_of(pending, batch_workflows)
            except DBAPIError as exc:
                _log.warning("cannot read a job's redrive round, trying again: %s", exc)
                for batch_workflow in batch_workflows:
                    routed.kept[batch_workflow] = routed.pending.pop(batch_workflow)
        for job_workflow, round_ in rounds.items():
            if round_ is None:
                continue
            if round_.positions is None:  # the tree carries on: its batches take their own
                for name in by_job[job_workflow]:
                    routed.pending[name].round = round_.round
                continue
            groups = [routed.pending.pop(name) for name in by_job[job_workflow]]
            into = _into_round(round_, job_workflow, groups, routed.taken)
            if into.reports:
                routed.pending[job_workflow] = into
        return routed

    async def _round_of(
        self, pending: dict[str, BatchReports], batch_workflows: list[str]
    ) -> _Round | None:
        """The job's round with its items' positions; None when it is not being redriven. A
        job whose row cannot be read now goes by what it said when last read."""
        first = pending[batch_workflows[0]].reports[0]
        partition_id, job_id, _ = parse_job_task_id(first.task_id)
        try:
            _, round_ = await self._gate.seen(partition_id, job_id)
        except DBAPIError:
            last = self._gate.last_seen(partition_id, job_id)
            if last is None:
                raise
            round_ = last[1]
        if not round_:
            return None
        key = (partition_id, job_id)
        task_ids = list(
            {report.task_id for name in batch_workflows for report in pending[name].reports}
        )
        return _Round(key, round_, await self._ledger.positions(key, round_, task_ids))


def _into_round(
    round_: _Round, job_workflow: str, groups: list[BatchReports], taken: list[Delivery]
) -> BatchReports:
    into = BatchReports(job_workflow, round=round_.round)
    for group in groups:
        for report, delivery in group.pairs():
            position = (round_.positions or {}).get(report.task_id)
            if position is None:  # of a batch that has ended, as before the redrive
                TRACKING_ENDED_BATCH_REPORTS.inc()
                delivery.recorded()
                taken.append(delivery)
                continue
            moved = dataclasses.replace(
                report, batch_workflow=job_workflow, number=item_number(0, position)
            )
            into.add(moved, delivery)
    return into
