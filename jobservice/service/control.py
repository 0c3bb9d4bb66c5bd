"""Pausing, resuming, cancelling and deleting one job: its row first, then its workflows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from jobservice.db.store import JobStore
from jobservice.errors import JobStateError, UnavailableError
from jobservice.execution.names import PAUSE_SIGNAL, RESUME_SIGNAL
from jobservice.execution.tree import Word
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.jobs.steering import SteeringPatch
from jobservice.service.reads import JobReads
from jobservice.service.stalls import JobHealth
from jobservice.temporal.orchestration import JobWorkflows

_PAUSE_READS = 5
"""Times a pause reads a job whose status changes under it before it gives up."""
_SETTLE_SECONDS = 3.0
"""How long a resume waits for the job's row to show it."""


class JobControl:
    """Pause, resume, cancel and delete. The row says what was asked at once; the workflows
    carry it out, and write the row again as they do."""

    def __init__(
        self, store: JobStore, reads: JobReads, workflows: JobWorkflows, health: JobHealth
    ) -> None:
        self._store = store
        self._reads = reads
        self._workflows = workflows
        self._health = health

    async def pause(self, job_id: str, *, partition: str) -> JobView:
        """Stop the whole tree: nothing new starts, and chunks in flight stop after the slice
        they are in. The row reads Paused when this returns; resume goes on from there."""
        # The row reads Paused before the signal goes: chunks read it between slices and stop
        # at once, and a write the workflow made before it took the pause in cannot undo it.
        # A job just submitted may go from Waiting to Active meanwhile: read it again then.
        paused = False
        for _ in range(_PAUSE_READS):
            job = await self._reads.get(job_id, partition=partition)
            if job.status is JobStatus.PAUSED:
                return job
            if job.status not in (JobStatus.ACTIVE, JobStatus.WAITING):
                break
            paused = await self._set_status(partition, job_id, JobStatus.PAUSED, was=[job.status])
            if paused:
                break
        if not paused:
            raise JobStateError(
                f"job {job_id!r} is {job.status}; only an Active or Waiting job can be paused"
            )
        try:
            await self._workflows.signal(partition, job_id, PAUSE_SIGNAL)
        except BaseException:
            await self._set_status(partition, job_id, job.status, was=[JobStatus.PAUSED])
            raise
        await self._workflows.tell_tree(partition, job_id, Word.PAUSE)
        return await self._reads.get(job_id, partition=partition)

    async def resume(self, job_id: str, *, partition: str, settle: bool) -> JobView:
        """Resume a Paused job; with ``settle``, return once its row shows it running. Resuming
        an Active job changes nothing, as the reference has it (a button pressed twice)."""
        job = await self._reads.get(job_id, partition=partition)
        if job.status is JobStatus.ACTIVE:
            return job
        if job.status is not JobStatus.PAUSED:
            raise JobStateError(f"job {job_id!r} is {job.status}; only a Paused job can be resumed")
        await self._workflows.signal(partition, job_id, RESUME_SIGNAL)
        if not settle:
            return job
        return await self._settled(partition, job_id, {JobStatus.ACTIVE, JobStatus.WAITING})

    async def tune(self, job_id: str, patch: SteeringPatch, *, partition: str) -> JobView:
        """Change a running job's steering (its rate limit, in-flight window, failure tolerance
        or priority): in force in its whole tree within moments, kept in its row. A paused
        job keeps it for when it resumes."""
        job = await self._reads.get(job_id, partition=partition)
        if job.status.is_terminal:
            raise JobStateError(
                f"job {job_id!r} is {job.status}; a job that has ended cannot be tuned"
            )
        if not patch.changes():
            return job
        if await self._health.workers_polling() is False:
            # The Update would wait for a worker to take it; say so now instead.
            raise UnavailableError(
                f"no worker polls for job {job_id!r}, so nothing can take the change now; "
                "start a worker (jobservice worker) and try again"
            )
        await self._workflows.tune(partition, job_id, patch.wire())
        return await self._reads.get(job_id, partition=partition)

    async def cancel(self, job_id: str, *, partition: str, settle: bool) -> JobView:
        """Cancel the whole tree. Cancelling a Cancelled job changes nothing."""
        job = await self._reads.get(job_id, partition=partition)
        if job.status is JobStatus.CANCELLED:
            return job
        if job.status.is_terminal:
            raise JobStateError(f"job {job_id!r} is {job.status}; it can no longer be cancelled")
        cancelling = await self._workflows.cancel(partition, job_id)
        if not cancelling and await self._workflows.execution(partition, job_id) is not None:
            # It has just ended: its own last write to the row says how.
            return await self._settled(partition, job_id, {JobStatus.CANCELLED})
        await self._workflows.tell_tree(partition, job_id, Word.CANCEL)
        # Temporal holds the request now; the row says so at once, whether or not a worker
        # is there yet to stop the job's batches.
        await self._set_status(partition, job_id, JobStatus.CANCELLED)
        if not settle:
            return job
        await self._workflows.tree_closed(partition, job_id, served=self._health.workers_polling)
        return await self._reads.get(job_id, partition=partition)

    async def delete(self, job_id: str, *, partition: str) -> None:
        """Stop the job if it runs, and remove it."""
        row = await self._reads.row(partition, job_id)
        if not JobStatus(row["status"]).is_terminal:
            await self._workflows.terminate(partition, job_id, reason="the job was deleted")
        await asyncio.to_thread(self._store.delete, partition_id=partition, job_id=job_id)

    async def _set_status(
        self,
        partition: str,
        job_id: str,
        status: JobStatus,
        *,
        was: Sequence[JobStatus] | None = None,
    ) -> bool:
        return await asyncio.to_thread(
            self._store.set_status, partition_id=partition, job_id=job_id, status=status, was=was
        )

    async def _settled(self, partition: str, job_id: str, wanted: set[JobStatus]) -> JobView:
        """The job once its row shows one of ``wanted`` (the workflow writes it at once), or
        as it is after a few seconds without a worker to do so."""
        deadline = asyncio.get_running_loop().time() + _SETTLE_SECONDS
        while True:
            job = await self._reads.get(job_id, partition=partition)
            if job.status in wanted or asyncio.get_running_loop().time() > deadline:
                return job
            await asyncio.sleep(0.05)
