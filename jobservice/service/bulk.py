"""Actions on every job a selection holds, and what they did: "12 cancelled, 3 already finished"."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from jobservice.db.query import JobQuery
from jobservice.db.store import JobStore
from jobservice.errors import JobNotFoundError, JobStateError, UnavailableError
from jobservice.jobs.status import JobStatus

if TYPE_CHECKING:
    from jobservice.service.control import JobControl
    from jobservice.service.reads import JobReads

_BULK_AT_ONCE = 8
"""Jobs a bulk action works on at once."""
_log = logging.getLogger(__name__)


class BulkAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    DELETE = "delete"

    @property
    def done_word(self) -> str:
        return {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}.get(
            self.value, "deleted"
        )

    def outcome(self, status: JobStatus) -> Outcome:
        """What the action does to a job of ``status``, before it is tried."""
        if self is BulkAction.DELETE:
            return Outcome.DONE
        if self is BulkAction.CANCEL and status is JobStatus.CANCELLED:
            return Outcome.ALREADY
        if status.is_terminal:
            return Outcome.FINISHED
        if self is BulkAction.PAUSE:
            return Outcome.ALREADY if status is JobStatus.PAUSED else Outcome.DONE
        if self is BulkAction.RESUME:
            return Outcome.DONE if status is JobStatus.PAUSED else Outcome.ALREADY
        return Outcome.DONE


class Outcome(StrEnum):
    DONE = "done"
    ALREADY = "already"
    """Already as the action would leave it: paused, running (for a resume), cancelled."""
    FINISHED = "finished"
    """Ended before the action: nothing left to pause, resume or cancel."""
    GONE = "gone"
    """Deleted meanwhile by someone else."""
    FAILED = "failed"
    """The action failed on it (Temporal away, say): it is as it was, and may be tried again."""


_ALREADY = {"pause": "already paused", "resume": "not paused", "cancel": "already cancelled"}


@dataclass(frozen=True)
class BulkReport:
    """How many of the selected jobs each outcome took."""

    action: BulkAction
    done: int = 0
    already: int = 0
    finished: int = 0
    gone: int = 0
    failed: int = 0

    @property
    def selected(self) -> int:
        return self.done + self.already + self.finished + self.gone + self.failed

    def __str__(self) -> str:
        parts = [
            (self.done, self.action.done_word),
            (self.already, _ALREADY.get(self.action.value, "")),
            (self.finished, "already finished"),
            (self.gone, "deleted meanwhile"),
            (self.failed, "failed (try again)"),
        ]
        said = [f"{count:,} {words}" for count, words in parts if count]
        return ", ".join(said) or f"no job {self.action.done_word}: none matched"


def all_or_unavailable(report: BulkReport) -> int:
    """How many jobs a REST bulk endpoint changed; if it failed on some, a 503 to retry."""
    if report.failed:
        raise UnavailableError(
            f"{report}: the action failed on {report.failed:,} of the jobs; send it again"
        )
    return report.done


class BulkRunner:
    """Carries out an action on every job a query selects, a few jobs at a time."""

    def __init__(self, store: JobStore, reads: JobReads, control: JobControl) -> None:
        self._store = store
        self._reads = reads
        self._control = control

    async def run(
        self,
        query: JobQuery,
        action: BulkAction,
        *,
        progress: Callable[[BulkReport, int], None] | None = None,
    ) -> BulkReport:
        """See :meth:`JobService.bulk`."""
        counts = dict.fromkeys(Outcome, 0)
        selected = await asyncio.to_thread(self._store.selected, query)
        todo = iter(selected)

        def report() -> BulkReport:
            return BulkReport(action, **{outcome.value: n for outcome, n in counts.items()})

        async def act_on_the_next() -> None:
            for partition, job_id, status in todo:
                outcome = action.outcome(status)
                if outcome is Outcome.DONE:
                    outcome = await self._act(action, partition, job_id)
                counts[outcome] += 1
                if progress is not None:
                    progress(report(), len(selected))

        if progress is not None:
            progress(report(), len(selected))
        await asyncio.gather(*(act_on_the_next() for _ in range(_BULK_AT_ONCE)))
        return report()

    async def _act(self, action: BulkAction, partition: str, job_id: str) -> Outcome:
        """Act on one job; never raises, so that one job's failure stops no other."""
        try:
            if action is BulkAction.DELETE:
                await self._control.delete(job_id, partition=partition)
            elif action is BulkAction.CANCEL:
                await self._control.cancel(job_id, partition=partition, settle=False)
            elif action is BulkAction.RESUME:
                job = await self._control.resume(job_id, partition=partition, settle=False)
                if job.status is not JobStatus.PAUSED:  # running again meanwhile
                    return Outcome.ALREADY
            else:
                await self._control.pause(job_id, partition=partition)
        except JobNotFoundError:
            return Outcome.GONE
        except JobStateError:
            return await self._outcome_now(action, partition, job_id)
        except Exception as exc:
            _log.warning("%s of job %s/%s failed: %s", action.value, partition, job_id, exc)
            return Outcome.FAILED
        return Outcome.DONE

    async def _outcome_now(self, action: BulkAction, partition: str, job_id: str) -> Outcome:
        """What an action that found a job changed meanwhile did: as the job is now."""
        try:
            return action.outcome((await self._reads.get(job_id, partition=partition)).status)
        except JobNotFoundError:
            return Outcome.GONE
        except Exception as exc:
            _log.warning("job %s/%s could not be read again: %s", partition, job_id, exc)
            return Outcome.FAILED
