"""The job database activities: the workflow keeps its job's row current through these.

They run as local activities: one marker in the workflow's history per write, at most about
once a second per job, and at once for a change of status.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from jobservice.db.records import RECORD_JOB, JobRecord
from jobservice.db.store import JobStore


class JobRecordActivities:
    """Writes job rows; injected with the job store."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    @activity.defn(name=RECORD_JOB)
    async def record_job(self, record: JobRecord) -> bool:
        """Write the job's state to its row; False when the row is gone or has ended."""
        return await asyncio.to_thread(self._store.record, record)
