"""Task messages: the envelope sent to a target pipe, compatible with CAF worker-framework tasks.

The builder and handler interfaces that make and take these messages are in
:mod:`jobservice.plugin`, beside the batch plugin's; importing them from here still works, with
a ``DeprecationWarning``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from jobservice._moved import moved_names
from jobservice._version import __version__

# Older plugins import the builder and handler interfaces from here.
__getattr__ = moved_names(
    __name__, {"ItemHandler": "jobservice.plugin", "TaskMessageBuilder": "jobservice.plugin"}
)

TASK_MESSAGE_VERSION = 3
_TASK_ID_NAMESPACE = uuid.UUID("6f1c1e7a-2f4b-4c36-9a55-3c1f4f8e9d21")
_TASK_ID_HASH = hashlib.sha1(_TASK_ID_NAMESPACE.bytes, usedforsecurity=False)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a task message builder makes of one item."""

    task_classifier: str
    task_api_version: int
    task_data: Any


def json_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, written by orjson: a task message's envelope in a
    fifth of the standard library's time. What orjson refuses (an integer past 64 bits, a
    type it does not know) the standard library writes, or refuses as it always did."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def parse_json(body: bytes | str) -> Any:
    """The JSON ``body``, read by orjson; what orjson refuses the standard library reads, or
    refuses with its own error (a ``ValueError``, or a ``RecursionError`` past its depth)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def task_id_of(job_task_id: str) -> str:
    """The task id of the item ``job_task_id``: ``uuid5`` of it in the service's namespace,
    made by hand (the same string as :func:`uuid.uuid5`, at a third of its cost)."""
    hashed = _TASK_ID_HASH.copy()
    hashed.update(job_task_id.encode())
    digest = bytearray(hashed.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class TaskMessage:
    """One item's task message. ``task_id`` is derived from ``job_task_id``, so a redelivery
    carries the same id and a consumer can tell it apart from new work. It is worked out when
    first read: a message handled in process whose handler never reads it costs nothing."""

    __slots__ = (
        "_task_id",
        "context",
        "correlation_id",
        "job_task_id",
        "status_check_interval_millis",
        "status_check_url",
        "task_api_version",
        "task_classifier",
        "task_data",
        "to",
        "track_to",
        "tracking_pipe",
    )

    def __init__(
        self,
        job_task_id: str,
        task_classifier: str,
        task_api_version: int,
        task_data: Any,
        to: str,
        correlation_id: str,
        tracking_pipe: str | None = None,
        track_to: str | None = None,
        status_check_url: str | None = None,
        status_check_interval_millis: int = 5000,
        context: dict[str, str] | None = None,
        task_id: str = "",
    ) -> None:
        self.job_task_id = job_task_id
        self.task_classifier = task_classifier
        self.task_api_version = task_api_version
        self.task_data = task_data
        self.to = to
        self.correlation_id = correlation_id
        self.tracking_pipe = tracking_pipe
        self.track_to = track_to
        self.status_check_url = status_check_url
        self.status_check_interval_millis = status_check_interval_millis
        self.context: dict[str, str] = {} if context is None else context
        self._task_id = task_id

    @property
    def task_id(self) -> str:
        if not self._task_id:
            self._task_id = task_id_of(self.job_task_id)
        return self._task_id

    @task_id.setter
    def task_id(self, value: str) -> None:
        self._task_id = value

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.job_task_id,
            self.task_classifier,
            self.task_api_version,
            self.task_data,
            self.to,
            self.correlation_id,
            self.tracking_pipe,
            self.track_to,
            self.status_check_url,
            self.status_check_interval_millis,
            self.context,
            self.task_id,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskMessage):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it was

    def __repr__(self) -> str:
        return (
            f"TaskMessage(job_task_id={self.job_task_id!r}, task_id={self.task_id!r}, "
            f"task_classifier={self.task_classifier!r}, to={self.to!r})"
        )

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

    def to_json(self) -> bytes:
        """The JSON envelope, as a queue gets it."""
        return json_bytes(self.to_dict())

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
