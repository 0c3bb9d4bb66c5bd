"""Actions on every job a selection holds, and what they did: "12 cancelled, 3 already finished"."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from jobservice.jobs.status import JobStatus


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
