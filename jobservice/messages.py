"""Task messages: the envelope sent to a target pipe, compatible with CAF worker-framework tasks.

The builder and handler interfaces that make and take these messages are in
:mod:`jobservice.plugin`, beside the batch plugin's; importing them from here still works, with
a ``DeprecationWarning``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from jobservice._moved import moved_names
from jobservice._version import __version__

# Older plugins import the builder and handler interfaces from here.
__getattr__ = moved_names(
    __name__, {"ItemHandler": "jobservice.plugin", "TaskMessageBuilder": "jobservice.plugin"}
)

TASK_MESSAGE_VERSION = 3
_TASK_ID_NAMESPACE = uuid.UUID("6f1c1e7a-2f4b-4c36-9a55-3c1f4f8e9d21")


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a task message builder makes of one item."""

    task_classifier: str
    task_api_version: int
    task_data: Any


@dataclass(slots=True)
class TaskMessage:
    """One item's task message. ``task_id`` is derived from ``job_task_id``, so a redelivery
    carries the same id and a consumer can tell it apart from new work."""

    job_task_id: str
    task_classifier: str
    task_api_version: int
    task_data: Any
    to: str
    correlation_id: str
    tracking_pipe: str | None = None
    track_to: str | None = None
    status_check_url: str | None = None
    status_check_interval_millis: int = 5000
    context: dict[str, str] = field(default_factory=dict)
    task_id: str = ""

    def __post_init__(self) -> None:
        if not self.task_id:
            self.task_id = str(uuid.uuid5(_TASK_ID_NAMESPACE, self.job_task_id))

    @classmethod
    def from_dict(cls, envelope: dict[str, Any]) -> TaskMessage:
        """The message :meth:`to_dict` made, as it was: the same ids, data and tracking."""
        tracking = envelope.get("tracking") or {}
        return cls(
            job_task_id=tracking["jobTaskId"],
            task_classifier=envelope["taskClassifier"],
            task_api_version=envelope["taskApiVersion"],
            task_data=envelope.get("taskData"),
            to=envelope["to"],
            correlation_id=envelope.get("correlationId") or "",
            tracking_pipe=tracking.get("trackingPipe"),
            track_to=tracking.get("trackTo"),
            status_check_url=tracking.get("statusCheckUrl"),
            status_check_interval_millis=tracking.get("statusCheckIntervalMillis") or 5000,
            context=dict(envelope.get("context") or {}),
            task_id=envelope.get("taskId") or "",
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON envelope of DESIGN.md."""
        return {
            "version": TASK_MESSAGE_VERSION,
            "taskId": self.task_id,
            "taskClassifier": self.task_classifier,
            "taskApiVersion": self.task_api_version,
            "taskData": self.task_data,
            "taskStatus": "NEW_TASK",
            "context": self.context,
            "to": self.to,
            "correlationId": self.correlation_id,
            "tracking": {
                "jobTaskId": self.job_task_id,
                "trackingPipe": self.tracking_pipe,
                "trackTo": self.track_to,
                "statusCheckUrl": self.status_check_url,
                "statusCheckIntervalMillis": self.status_check_interval_millis,
            },
            "sourceInfo": {"name": "jobservice", "version": __version__},
        }
