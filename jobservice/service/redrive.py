"""Redrive: run a finished job again in place, sending exactly its failed items once more,
and, for a job that stopped (cancelled or failed) before it reached every item, first the
items it never got to, carrying on from where each of its batches stood.

The job keeps its id and row; its failed items are copied into a new round of the failed-item
ledger and sent again from the task messages recorded there, with their own task ids, so a
source changed since does not change what is retried and downstream deduplication still
works. A new run of the job's workflow carries the round; the job's counts move as its items
complete. Refused, with the reason, for a job that has not finished, one with nothing to
retry, and while another redrive of it is under way.
"""

from __future__ import annotations

import asyncio

from temporalio.client import WorkflowExecutionStatus

from jobservice.db.store import JobStore
from jobservice.errors import JobStateError
from jobservice.execution.job import NewJobRow, RedriveInput
from jobservice.jobs.definition import NewJob
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.service.reads import JobReads
from jobservice.service.reconciler import Start
from jobservice.service.validation import JobValidator
from jobservice.temporal.orchestration import JobWorkflows

CLOSE_SECONDS = 10.0
"""How long a redrive waits for the job's last run to close after its row says it ended."""


class JobRedrive:
    """Redrives finished jobs."""

    def __init__(
        self,
        store: JobStore,
        reads: JobReads,
        workflows: JobWorkflows,
        validator: JobValidator,
        start: Start,
    ) -> None:
        self._store = store
        self._reads = reads
        self._workflows = workflows
        self._validator = validator
        self._start = start

    async def redrive(self, job_id: str, *, partition: str) -> JobView:
        """Send the job's failed items again; the job as it reads once its round is begun."""
        row = await self._reads.row(partition, job_id)  # ids checked, and the job exists
        status = JobStatus(row["status"])
        if not status.is_terminal:
            raise JobStateError(
                f"job {job_id!r} is {status}; only a Completed, Failed or Cancelled job can be "
                "redriven"
            )
        if not await self._closed(partition, job_id):
            raise JobStateError(
                f"job {job_id!r} is {status} and its workflow is still stopping; redrive it "
                "once it has"
            )
        new_row = NewJobRow.model_validate(
            {key: row[key] for key in NewJobRow.model_fields if key in row}
        )
        definition = await asyncio.to_thread(
            self._validator.execution_of,
            NewJob.model_validate(new_row.definition),
            partition=partition,
            job_id=job_id,
        )
        begun = await asyncio.to_thread(
            self._store.start_redrive, partition_id=partition, job_id=job_id
        )
        before = begun.row
        await self._start(
            new_row,
            definition,
            RedriveInput(
                round=begun.round,
                items=begun.items,
                total=before.total,
                completed=before.completed,
                failed=before.failed,
                carries_on=begun.resumes,
            ),
        )
        return await self._reads.get(job_id, partition=partition)

    async def _closed(self, partition: str, job_id: str) -> bool:
        """Whether the job's last workflow run has closed, waiting a moment for it: a job's
        row reads its end just before its workflow tells the jobs that wait for it."""
        deadline = asyncio.get_running_loop().time() + CLOSE_SECONDS
        while True:
            execution = await self._workflows.execution(partition, job_id)
            if execution is None or execution.status != WorkflowExecutionStatus.RUNNING:
                return True
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.1)
