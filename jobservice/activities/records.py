"""The job database activities: the workflow keeps its job's row current through these, and
learns through them where its prerequisite jobs stand.

They run as local activities: one marker in the workflow's history per write, at most about
twice a second per job, and at once for a change of status.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jobservice.db.prerequisites import settle
from jobservice.db.store import JobStore
from jobservice.execution.job import JobKey, JobRecord, PrerequisiteQuery, PrerequisiteState
from jobservice.execution.names import (
    NOTIFY_DEPENDENTS,
    PREREQUISITES_SIGNAL,
    RECORD_JOB,
    SETTLE_PREREQUISITES,
)
from jobservice.jobs.taskids import workflow_id
from jobservice.metrics import JOBS_FINISHED


class JobRecordActivities:
    """Reads and writes job rows; injected with the job store and a Temporal client."""

    def __init__(self, store: JobStore, client: Client) -> None:
        self._store = store
        self._client = client

    @activity.defn(name=RECORD_JOB)
    async def record_job(self, record: JobRecord) -> bool:
        """Write the job's state to its row; False when the row is gone or has ended."""
        written = await asyncio.to_thread(self._store.record, record)
        # At least once: the store takes a terminal status written again, as it must (the
        # service writes Cancelled before the workflow's last record), so a run of this
        # activity done again after a crash counts again.
        if written and record.ended:
            JOBS_FINISHED.labels(record.status.value).inc()
        return written

    @activity.defn(name=SETTLE_PREREQUISITES)
    async def settle_prerequisites(self, query: PrerequisiteQuery) -> PrerequisiteState:
        """Where the job's prerequisites stand, as their rows say."""
        rows = await asyncio.to_thread(
            self._store.get_many,
            partition_id=query.partition_id,
            job_ids=query.prerequisite_job_ids,
        )
        return settle(query, {row.job_id: row for row in rows}, datetime.now(UTC))

    @activity.defn(name=NOTIFY_DEPENDENTS)
    async def notify_dependents(self, job: JobKey) -> int:
        """Tell the unfinished jobs waiting for ``job`` that it has ended; how many there were."""
        dependents = await asyncio.to_thread(
            self._store.dependents, partition_id=job.partition_id, job_id=job.job_id
        )
        for dependent in dependents:
            handle = self._client.get_workflow_handle(workflow_id(job.partition_id, dependent))
            try:
                await handle.signal(PREREQUISITES_SIGNAL)
            except RPCError as exc:
                # Not started yet: it reads its prerequisites' rows when it starts.
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
        return len(dependents)
