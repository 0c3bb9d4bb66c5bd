"""Results of a job being redriven go to its redrive's batch.

A redrive sends the job's failed items again with their own task ids, so their results name
the batches of the job's first run, which have ended. While the job's row says it is in a
redrive round, its results are taken to the job's root workflow, where the round's one batch
runs, each numbered by the item's place in the round (from the failed-item ledger). A result
for an item the round does not send again goes to its own batch, as of the round: a batch of
the job's tree carrying on in the round (a job that had stopped before it reached every item)
counts it; a batch that has ended takes it as such. A round's failed items are numbered only
once its tree is done, so until then none of its results is taken for one of them.
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
from jobservice.tracking.gathered import BatchReports

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Round:
    """A redriven job's round, and the positions in it of the items its reports name."""

    key: tuple[str, str]
    round: int
    positions: dict[str, int]


@dataclass
class Routed:
    """What :meth:`RedriveRouting.route` made of a burst."""

    pending: dict[str, BatchReports]
    """The reports to record, by batch workflow."""
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
        routed = Routed(dict(pending), {})
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
            into = BatchReports(job_workflow, round=round_.round)
            for name in by_job[job_workflow]:
                rest = _into_round(round_, routed.pending.pop(name), into)
                if rest.reports:
                    routed.pending[name] = rest
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


def _into_round(round_: _Round, group: BatchReports, into: BatchReports) -> BatchReports:
    """Move the reports of ``group`` for items the round sends again ``into`` its batch,
    each numbered by its place in the round; the rest (of the job's own batches, carrying on
    in the round, or ended) stay with their batch, as of the round."""
    rest = BatchReports(group.job_workflow, round=round_.round)
    for report, delivery in group.pairs():
        position = round_.positions.get(report.task_id)
        if position is None:
            rest.add(report, delivery)
            continue
        moved = dataclasses.replace(
            report, batch_workflow=into.job_workflow, number=item_number(0, position)
        )
        into.add(moved, delivery)
    return rest
