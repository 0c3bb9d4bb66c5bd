"""jobservice: a batch job service on Temporal.

The public interface: models, the plugin, builder and handler interfaces, the service layer,
settings and errors. ``jobservice.workflows`` and ``jobservice.activities`` are internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jobservice._version import __version__

if TYPE_CHECKING:
    from jobservice.errors import (
        BatchDefinitionError,
        InvalidJobError,
        JobConflictError,
        JobNotFoundError,
        JobServiceError,
        JobStateError,
        UnavailableError,
    )
    from jobservice.jobs.definition import BatchWorkerTask, JobDefinition
    from jobservice.jobs.job import Failure, JobCounts, JobView
    from jobservice.jobs.status import JobStatus
    from jobservice.jobs.tolerance import FailureTolerance
    from jobservice.messages import TaskMessage, TaskSpec
    from jobservice.plugin import BatchPlugin, BatchWorkerServices, ItemHandler, TaskMessageBuilder
    from jobservice.service.job_service import JobService, Submission
    from jobservice.settings import Settings, get_settings

_HOMES = {
    **dict.fromkeys(
        [
            "BatchDefinitionError",
            "InvalidJobError",
            "JobConflictError",
            "JobNotFoundError",
            "JobServiceError",
            "JobStateError",
            "UnavailableError",
        ],
        "jobservice.errors",
    ),
    **dict.fromkeys(["TaskMessage", "TaskSpec"], "jobservice.messages"),
    **dict.fromkeys(["BatchWorkerTask", "JobDefinition"], "jobservice.jobs.definition"),
    **dict.fromkeys(["Failure", "JobCounts", "JobView"], "jobservice.jobs.job"),
    "FailureTolerance": "jobservice.jobs.tolerance",
    "JobStatus": "jobservice.jobs.status",
    **dict.fromkeys(
        ["BatchPlugin", "BatchWorkerServices", "ItemHandler", "TaskMessageBuilder"],
        "jobservice.plugin",
    ),
    **dict.fromkeys(["JobService", "Submission"], "jobservice.service.job_service"),
    **dict.fromkeys(["Settings", "get_settings"], "jobservice.settings"),
}
"""Where each public name lives: imported when first used, so that a command-line tool that
needs none of them (``jobservice --help``) does not pay for the Temporal SDK and the rest."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'jobservice' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "BatchDefinitionError",
    "BatchPlugin",
    "BatchWorkerServices",
    "BatchWorkerTask",
    "Failure",
    "FailureTolerance",
    "InvalidJobError",
    "ItemHandler",
    "JobConflictError",
    "JobCounts",
    "JobDefinition",
    "JobNotFoundError",
    "JobService",
    "JobServiceError",
    "JobStateError",
    "JobStatus",
    "JobView",
    "Settings",
    "Submission",
    "TaskMessage",
    "TaskMessageBuilder",
    "TaskSpec",
    "UnavailableError",
    "__version__",
    "get_settings",
]
