"""jobservice: a batch job service on Temporal.

The public interface: models, the plugin, builder and handler interfaces, the service layer,
settings and errors. ``jobservice.workflows`` and ``jobservice.activities`` are internal.
"""

from jobservice._version import __version__
from jobservice.errors import (
    BatchDefinitionError,
    InvalidJobError,
    JobConflictError,
    JobNotFoundError,
    JobServiceError,
    JobStateError,
    UnavailableError,
)
from jobservice.messages import ItemHandler, TaskMessage, TaskMessageBuilder, TaskSpec
from jobservice.models import (
    BatchWorkerTask,
    Failure,
    FailureTolerance,
    JobCounts,
    JobDefinition,
    JobStatus,
    JobView,
)
from jobservice.plugin import BatchPlugin, BatchWorkerServices
from jobservice.service import JobService, Submission
from jobservice.settings import Settings, get_settings

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
