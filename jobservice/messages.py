"""Task messages: the envelope sent to a target pipe, compatible with CAF worker-framework tasks."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobservice._version import __version__

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


class TaskMessageBuilder(ABC):
    """Turns an item and the job's ``taskMessageParams`` into the task part of a message.

    Found by ``taskMessageType`` in the entry-point group ``jobservice.task_message_builders``.
    Raise ``ValueError`` for an item that cannot become a task: that item fails.
    """

    @abstractmethod
    def build(self, item: Any, params: Mapping[str, str]) -> TaskSpec:
        """The classifier, API version and data of the task for ``item``."""


class ItemHandler(ABC):
    """Processes items in the worker process, for a ``local:<name>`` target pipe.

    Found by name in the entry-point group ``jobservice.item_handlers``. Runs in a worker
    thread; raising marks the item failed with the exception's message. Delivery is at least
    once: after a crash, an item may be handled again.
    """

    @abstractmethod
    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        """Process one item; ``params`` are the job's ``taskMessageParams``."""

    def check_params(self, params: Mapping[str, str]) -> None:
        """Refuse, when a job is submitted, ``taskMessageParams`` this handler could never use.

        Keep it cheap: look at the params only. Raise ``ValueError`` with a message that names
        the param and what is allowed; the job is then refused with it. A handler that does not
        override this accepts any params.
        """
        return None
