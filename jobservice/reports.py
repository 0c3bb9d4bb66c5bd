"""What workers report on the tracking pipe, read: which item of which batch a message is about
and what it says of it. Pure: it touches neither the broker nor Temporal."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobservice.models import Failure
from jobservice.taskids import parse_job_task_id, split_item, workflow_id

COMPLETING = {"RESULT_SUCCESS", "RESULT_FAILURE"}
FAILING = {"RESULT_EXCEPTION", "INVALID_TASK"}
MESSAGE_LIMIT = 2000
"""Most characters of a failure message kept."""
_TASK_ID_LIMIT = 1000
"""Longer than any task id this service makes (a partition id of at most 40 characters, a job
id of at most 48, and a path)."""
_NUMBER_DIGITS = 19
"""Digits of the largest item number a batch can have (a 64-bit count)."""
_QUEUE_NAME_BYTES = 255
_NAME_LIMIT = 200
"""Most characters of a worker's name kept in a failure's source."""


class UnreadableError(ValueError):
    """A tracking message that can never be recorded; its text is the dead-letter reason."""


@dataclass(frozen=True)
class Report:
    """What one tracking message says: a final result for item ``number`` of a batch (failed
    when ``failure`` is set), or, with no number, a progress report."""

    batch_workflow: str
    job_workflow: str
    task_id: str
    number: int | None
    failure: Failure | None = None
    forward_to: str | None = None


def read_report(body: bytes, tracking_pipe: str) -> Report:
    """Parse a tracking message, or raise :class:`UnreadableError` saying why it cannot be."""
    try:
        message = json.loads(body)
    except RecursionError:
        raise UnreadableError("JSON nested too deeply to read") from None
    except ValueError as exc:
        raise UnreadableError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise UnreadableError("not a JSON object")
    if "estimatedPercentageCompleted" in message:
        return _progress_report(message)
    tracking = message.get("tracking")
    task_id = tracking.get("jobTaskId") if isinstance(tracking, dict) else None
    if not isinstance(task_id, str):
        raise UnreadableError("no tracking.jobTaskId")
    if not _is_text(task_id):
        raise UnreadableError(f"tracking.jobTaskId {safe(task_id[:60])!r} is not UTF-8 text")
    status = message.get("taskStatus")
    if status not in COMPLETING | FAILING:
        raise UnreadableError(
            f"unknown taskStatus {safe(repr(status)[:60])} for {safe(task_id[:120])}"
        )
    batch_workflow, job_workflow, number = _item_of(task_id)
    failure = None
    if status in FAILING:
        source = message.get("sourceInfo")
        name = source.get("name") if isinstance(source, dict) else None
        failure = Failure(
            failure_id=task_id,
            failure_time=datetime.now(UTC),
            failure_source=f"worker {safe(name[:_NAME_LIMIT])}"
            if isinstance(name, str)
            else "tracking pipe",
            failure_message=f"{status}: {_text(message.get('taskData'))}",
        )
    to = message.get("to")
    track_to = tracking.get("trackTo") if isinstance(tracking, dict) else None
    forward = isinstance(to, str) and to and to not in (tracking_pipe, track_to)
    if isinstance(to, str) and forward and not _is_queue_name(to):
        raise UnreadableError(
            f"'to' {safe(to[:60])!r} is not a RabbitMQ queue name (UTF-8, at most "
            f"{_QUEUE_NAME_BYTES} bytes)"
        )
    return Report(
        batch_workflow=batch_workflow,
        job_workflow=job_workflow,
        task_id=task_id,
        number=number,
        failure=failure,
        forward_to=to if forward and isinstance(to, str) else None,
    )


def _progress_report(message: dict[str, Any]) -> Report:
    task_id = message.get("jobTaskId")
    percent = message.get("estimatedPercentageCompleted")
    if not isinstance(task_id, str) or not _is_text(task_id):
        raise UnreadableError("a progress report without a jobTaskId")
    if not isinstance(percent, int | float) or not 0 <= percent <= 100:
        raise UnreadableError(
            f"estimatedPercentageCompleted {safe(repr(percent)[:60])} is not 0 to 100"
        )
    batch_workflow, job_workflow, _ = _item_of(task_id)
    return Report(batch_workflow, job_workflow, task_id, None)


def _item_of(task_id: str) -> tuple[str, str, int]:
    """The workflows of an item's batch and job, and its number in the batch."""
    batch, dot, last = task_id.rpartition(".")
    if dot and len(last) > _NUMBER_DIGITS:
        raise UnreadableError(
            f"item number of {len(last):,} digits in task id {batch[:60]!r}…; "
            "no batch has that many items"
        )
    if len(task_id) > _TASK_ID_LIMIT:
        raise UnreadableError(f"task id {task_id[:60]!r}… is longer than {_TASK_ID_LIMIT}")
    item = split_item(task_id)
    if item is None:
        _task_path(task_id)  # raises, saying what is wrong with it
        raise UnreadableError(f"task id {task_id!r} does not end in an item number")
    try:
        return (*_workflows_of(item[0]), item[1])
    except UnreadableError:
        _task_path(task_id)  # says it of the whole task id
        raise


@functools.lru_cache(maxsize=4096)
def _workflows_of(batch_task_id: str) -> tuple[str, str]:
    """The workflow ids of a batch and its job; the results of a batch share them."""
    try:
        partition, job_id, path = parse_job_task_id(batch_task_id)
    except ValueError as exc:
        raise UnreadableError(str(exc)) from None
    return workflow_id(partition, job_id, path), workflow_id(partition, job_id)


def _task_path(task_id: str) -> tuple[str, str, tuple[int, ...]]:
    try:
        partition, job_id, path = parse_job_task_id(task_id)
    except ValueError as exc:
        raise UnreadableError(str(exc)) from None
    if not path:
        raise UnreadableError(f"task id {task_id!r} names a job, not an item")
    return partition, job_id, path


def _text(data: Any) -> str:
    text = safe(data) if isinstance(data, str) else json.dumps(data)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "…"


def _is_text(value: str) -> bool:
    """Whether ``value`` can be written as UTF-8 (JSON lets a lone surrogate through)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_queue_name(value: str) -> bool:
    return _is_text(value) and len(value.encode()) <= _QUEUE_NAME_BYTES


def safe(value: str) -> str:
    """``value`` with what UTF-8 cannot hold escaped, for messages and headers."""
    return value.encode("utf-8", "backslashreplace").decode()
