"""What every part of the service knows of a job without any model: its states, the default
partition and the most a job's body may hold. Free of dependencies, so that the command line
loads it at once; the rest of :mod:`jobservice.jobs` has the models."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DEFAULT_PARTITION", "MAX_DEFINITION_BYTES", "JobStatus"]

DEFAULT_PARTITION = "default"
MAX_DEFINITION_BYTES = 128_000
"""The most a job's body may hold, as JSON: large inputs belong in a file."""


class JobStatus(StrEnum):
    """A job's state. Terminal states never change."""

    WAITING = "Waiting"
    ACTIVE = "Active"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def exit_code(self) -> int:
        """The exit code of a command that waited for this state (as the reference job caller)."""
        return {JobStatus.COMPLETED: 0, JobStatus.FAILED: 1, JobStatus.CANCELLED: 3}.get(self, 2)
