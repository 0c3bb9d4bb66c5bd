"""Repairs jobs whose row and workflow disagree.

Submitting writes a job's row first and then starts its workflow, so a crash in between leaves
a row without a workflow; a workflow that closed while its row could not be written leaves a
row that still reads as running. Each pass over the quiet unfinished rows repairs both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from temporalio.client import WorkflowExecutionStatus

from jobservice.db import failures
from jobservice.db.rows import now_millis
from jobservice.db.store import JobStore
from jobservice.db.tables import JobRow
from jobservice.errors import UnavailableError
from jobservice.execution.job import NewJobRow, RedriveInput
from jobservice.jobs.definition import JobDefinition, NewJob
from jobservice.jobs.job import reached_every_item
from jobservice.jobs.status import JobStatus
from jobservice.service.validation import JobValidator
from jobservice.temporal.orchestration import JobWorkflows

_log = logging.getLogger(__name__)

Start = Callable[[NewJobRow, JobDefinition, RedriveInput | None], Awaitable[None]]
"""Starts the workflow of a job from its row and what it runs as."""

_CLOSED_STATUS = {
    WorkflowExecutionStatus.COMPLETED: JobStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: JobStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: JobStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: JobStatus.CANCELLED,
    WorkflowExecutionStatus.TERMINATED: JobStatus.CANCELLED,
}


class Reconciler:
    """Brings unfinished rows and their workflows back in step."""

    def __init__(
        self,
        store: JobStore,
        workflows: JobWorkflows,
        validator: JobValidator,
        start: Start,
        *,
        grace_seconds: float,
    ) -> None:
        self._store = store
        self._workflows = workflows
        self._validator = validator
        self._start = start
        self._grace_seconds = grace_seconds

    async def reconcile(self, *, page: int = 500) -> int:
        """Start the workflow of every unfinished job that has none, and bring a row whose
        workflow has closed up to date. Returns how many jobs it repaired.

        A job that cannot be repaired here (its plugin is not installed in this process, say)
        is logged and left for a worker that can; Temporal not answering ends the pass."""
        # Rows quiet for the grace period at least; with none, every row written by now.
        updated_by = now_millis() - int(self._grace_seconds * 1000)
        repaired = 0
        after: tuple[str, str] | None = None
        while True:
            rows = await asyncio.to_thread(
                self._store.unfinished, updated_by=updated_by, after=after, limit=page
            )
            for row in rows:
                try:
                    repaired += await self._repair(row)
                except UnavailableError:
                    raise
                except Exception as exc:
                    _log.warning(
                        "job %s/%s: its row and workflow disagree and cannot be reconciled "
                        "here: %s",
                        row.partition_id,
                        row.job_id,
                        exc,
                    )
            if len(rows) < page:
                return repaired
            after = (rows[-1].partition_id, rows[-1].job_id)

    async def _redrive_of(self, row: JobRow) -> RedriveInput | None:
        """The round a redriven job's row says it is in, its counts as they were before it
        (no run of the round has written them)."""
        if not row.redrive_count:
            return None
        key = (row.partition_id, row.job_id)
        items = await asyncio.to_thread(
            failures.round_size, self._store.engine, key, row.redrive_count
        )
        return RedriveInput(
            round=row.redrive_count,
            items=items,
            total=row.total,
            completed=row.completed,
            failed=row.failed,
            # A job that stopped short of its items is redriven from where it stood first.
            carries_on=not reached_every_item(
                row.total, row.completed + row.failed, row.splitting_complete
            ),
        )

    async def _repair(self, row: JobRow) -> int:
        """Repair one unfinished job whose row has been quiet; 1 when it needed it."""
        execution = await self._workflows.execution(row.partition_id, row.job_id)
        # A redriven job's run is the one begun with its last redrive.
        begun = row.last_redrive_time or row.create_time
        started = execution is not None and (
            execution.start_time.timestamp() * 1000 >= begun - 1000
        )
        if not started:
            new_row = NewJobRow.model_validate(row.model_dump(include=set(NewJobRow.model_fields)))
            job = NewJob.model_validate(new_row.definition)
            definition = await asyncio.to_thread(
                self._validator.execution_of, job, partition=row.partition_id, job_id=row.job_id
            )
            await self._start(new_row, definition, await self._redrive_of(row))
            return 1
        if execution is not None and execution.status in _CLOSED_STATUS:
            await asyncio.to_thread(
                self._store.set_status,
                partition_id=row.partition_id,
                job_id=row.job_id,
                status=_CLOSED_STATUS[execution.status],
            )
            return 1
        return 0
