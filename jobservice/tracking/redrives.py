"""Results of a job being redriven go to its redrive's batch.

A redrive sends the job's failed items again with their own task ids, so their results name
the batches of the job's first run, which have ended. While the job's row says it is in a
redrive round, its results are taken to the job's root workflow, where the round's one batch
runs, each numbered by the item's place in the round (from the failed-item ledger). A result
for an item the round does not send again is of a batch that has ended: counted as such, and
taken.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from jobservice.db.failures import FailureLedger
from jobservice.db.gate import JobGate
from jobservice.jobs.taskids import item_number, parse_job_task_id
from jobservice.metrics import TRACKING_ENDED_BATCH_REPORTS
from jobservice.tracking.gathered import BatchReports, Delivery


class RedriveRouting:
    """Takes the reports of jobs in a redrive round to their redrive's batch."""

    def __init__(self, gate: JobGate, ledger: FailureLedger) -> None:
        self._gate = gate
        self._ledger = ledger

    async def route(
        self, pending: dict[str, BatchReports]
    ) -> tuple[dict[str, BatchReports], list[Delivery]]:
        """``pending`` by batch workflow, with each redriven job's reports under its root
        workflow; and the messages of the reports a round does not hold, which are taken.
        Raises what the job database raises: the caller keeps the reports, to try again."""
        by_job: dict[str, list[str]] = defaultdict(list)
        for batch_workflow, batch in pending.items():
            by_job[batch.job_workflow].append(batch_workflow)
        routed = dict(pending)
        taken: list[Delivery] = []
        for job_workflow, batch_workflows in by_job.items():
            first = pending[batch_workflows[0]].reports[0]
            partition_id, job_id, _ = parse_job_task_id(first.task_id)
            _, round_ = await self._gate.seen(partition_id, job_id)
            if not round_:
                continue
            groups = [routed.pop(batch_workflow) for batch_workflow in batch_workflows]
            into = await self._to_round((partition_id, job_id), round_, job_workflow, groups, taken)
            if into.reports:
                routed[job_workflow] = into
        return routed, taken

    async def _to_round(
        self,
        key: tuple[str, str],
        round_: int,
        job_workflow: str,
        groups: list[BatchReports],
        taken: list[Delivery],
    ) -> BatchReports:
        task_ids = list({report.task_id for group in groups for report in group.reports})
        positions = await self._ledger.positions(key, round_, task_ids)
        into = BatchReports(job_workflow, round=round_)
        for group in groups:
            for report, delivery in group.pairs():
                position = positions.get(report.task_id)
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
