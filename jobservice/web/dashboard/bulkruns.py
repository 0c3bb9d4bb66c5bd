"""Bulk actions that outlive the request that started them.

Cancelling ten thousand jobs takes minutes: longer than a browser, or a proxy before the API,
waits for an answer. So a bulk action runs as a task of the API process; the page that
started it shows its result if it ends within moments, and otherwise a page of its progress
that follows it to the end. A run stops with the process that runs it; what it did stays
done, and the same action again finishes the rest (what is done already counts as such).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

from jobservice.db.query import JobQuery
from jobservice.service.bulk import BulkAction, BulkReport
from jobservice.service.job_service import JobService

KEEP_SECONDS = 3600.0
"""How long a finished run's report stays to be read."""


@dataclass
class BulkRun:
    """One bulk action under way, or done: its report so far, out of how many jobs."""

    id: str
    action: BulkAction
    partitions: tuple[str, ...] | None
    """Whose it is: the partitions of the viewer who started it (None: every one)."""
    report: BulkReport
    query: JobQuery
    selected: int | None = None
    """How many jobs it works on; None while they are being selected."""
    error: str | None = None
    finished_at: float | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def heard(self, report: BulkReport, selected: int) -> None:
        self.report, self.selected = report, selected


class BulkRuns:
    """The bulk actions of one API process."""

    def __init__(self, service: JobService) -> None:
        self._service = service
        self._runs: dict[str, BulkRun] = {}

    def start(
        self, query: JobQuery, action: BulkAction, partitions: tuple[str, ...] | None
    ) -> BulkRun:
        """A run of ``action`` on ``query``'s jobs; the one under way already, if the same
        viewer started the same (a form sent twice, another tab)."""
        self._forget()
        same = (query, action, partitions)
        for run in self._runs.values():
            if not run.done and (run.query, run.action, run.partitions) == same:
                return run
        run = BulkRun(uuid.uuid4().hex[:12], action, partitions, BulkReport(action), query)
        run.task = asyncio.create_task(self._run(run), name=f"bulk-{run.id}")
        self._runs[run.id] = run
        return run

    def get(self, run_id: str, partitions: tuple[str, ...] | None) -> BulkRun | None:
        """The run, if it is there and the viewer of ``partitions`` started one like it."""
        run = self._runs.get(run_id)
        return run if run is not None and run.partitions == partitions else None

    async def _run(self, run: BulkRun) -> None:
        try:
            run.report = await self._service.bulk(run.query, run.action, progress=run.heard)
        except Exception as exc:  # the selection could not be read: the jobs are as they were
            run.error = str(exc) or type(exc).__name__
        finally:
            run.finished_at = time.monotonic()

    def _forget(self) -> None:
        now = time.monotonic()
        for run_id, run in list(self._runs.items()):
            if run.finished_at is not None and now - run.finished_at > KEEP_SECONDS:
                del self._runs[run_id]
