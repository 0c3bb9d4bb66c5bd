"""What workers report on the tracking pipe, read: which items of which batches a message is
about and what it says of each. Pure: it touches neither the broker nor Temporal.

A message is a result (the task message's envelope with a final ``taskStatus``), a progress
report (``{jobTaskId, estimatedPercentageCompleted}``), or a reference worker framework
``TrackingReportTask``, whose ``taskData.trackingReports`` may speak of many items at once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeGuard

from pydantic import ValidationError

from jobservice.jobs.job import Failure
from jobservice.jobs.taskids import parse_job_task_id, split_item, workflow_id
from jobservice.messages import parse_json

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
TRACKING_REPORT_TASK = "TrackingReportTask"
"""The ``taskClassifier`` of the reference worker framework's tracking reports."""
TRACKING_REPORT_TASK_VERSION = 1
"""The newest ``taskApiVersion`` of a TrackingReportTask this service reads."""
REPORTS_LIMIT = 10_000
"""Most reports one TrackingReportTask may carry; a worker's batches are far smaller."""


class UnreadableError(ValueError):
    """A tracking message that can never be recorded; its text is the dead-letter reason."""


class Status(StrEnum):
    """What a report says of an item, in the reference worker framework's words."""

    COMPLETE = "Complete"
    FAILED = "Failed"
    PROGRESS = "Progress"
    RETRY = "Retry"


@dataclass(frozen=True)
class Report:
    """What a worker says of item ``number`` of a batch: it completed, it failed (``failure``
    says how), it is ``percent`` done, or it is being tried again (``attempt``, when the
    worker counts its tries)."""

    batch_workflow: str
    job_workflow: str
    task_id: str
    number: int
    status: Status
    failure: Failure | None = None
    percent: int = 0
    attempt: int | None = None
    forward_to: str | None = None
    position: int | None = None
    """Its place in a TrackingReportTask's ``trackingReports``; None: a message of its own."""


@dataclass(frozen=True)
class Reading:
    """The reports a message carries, and those of its ``trackingReports`` it cannot use, by
    position, each with the reason."""

    reports: list[Report]
    unusable: list[tuple[int, str]] = field(default_factory=list)


def read_reports(body: bytes, tracking_pipe: str) -> Reading:
    """Parse a tracking message, or raise :class:`UnreadableError` saying why none of it can
    be used."""
    message = _object(body)
    if message.get("taskClassifier") == TRACKING_REPORT_TASK:
        return _report_task(message)
    if "estimatedPercentageCompleted" in message:
        return Reading([_progress_report(message)])
    return Reading([_result(message, tracking_pipe)])


def _object(body: bytes) -> dict[str, Any]:
    try:
        message = parse_json(body)
    except RecursionError:
        raise UnreadableError("JSON nested too deeply to read") from None
    except ValueError as exc:
        raise UnreadableError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise UnreadableError("not a JSON object")
    return message


def _result(message: dict[str, Any], tracking_pipe: str) -> Report:
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
    return _report(
        task_id,
        Status.FAILED if failure is not None else Status.COMPLETE,
        failure=failure,
        forward_to=to if forward and isinstance(to, str) else None,
    )


def _report(task_id: str, status: Status, **details: Any) -> Report:
    batch_workflow, job_workflow, number = _item_of(task_id)
    return Report(batch_workflow, job_workflow, task_id, number, status, **details)


def _progress_report(message: dict[str, Any]) -> Report:
    task_id = message.get("jobTaskId")
    if not isinstance(task_id, str) or not _is_text(task_id):
        raise UnreadableError("a progress report without a jobTaskId")
    percent = _percent(message.get("estimatedPercentageCompleted"))
    return _report(task_id, Status.PROGRESS, percent=percent)


def _report_task(message: dict[str, Any]) -> Reading:
    version = message.get("taskApiVersion")
    if _is_count(version) and version > TRACKING_REPORT_TASK_VERSION:
        raise UnreadableError(
            f"{TRACKING_REPORT_TASK} version {version} is newer than "
            f"{TRACKING_REPORT_TASK_VERSION}, the one this service reads"
        )
    reports = _task_data(message).get("trackingReports")
    if not isinstance(reports, list):
        raise UnreadableError(f"a {TRACKING_REPORT_TASK} without a trackingReports list")
    if len(reports) > REPORTS_LIMIT:
        raise UnreadableError(
            f"{len(reports):,} trackingReports in one message; at most {REPORTS_LIMIT:,}"
        )
    reading = Reading([])
    for position, report in enumerate(reports):
        try:
            reading.reports.append(_tracking_report(report, position))
        except UnreadableError as exc:
            reading.unusable.append((position, str(exc)))
    if reading.unusable and not reading.reports:
        raise UnreadableError(
            "no usable report: " + "; ".join(named(p, reason) for p, reason in reading.unusable)
        )
    return reading


def _task_data(message: dict[str, Any]) -> dict[str, Any]:
    """A task message's ``taskData``: a JSON object, or the base64 of one, as the reference
    worker framework sends it."""
    data = message.get("taskData")
    if isinstance(data, str):
        try:
            data = _object(base64.b64decode(data, validate=True))
        except (binascii.Error, UnreadableError) as exc:
            raise UnreadableError(
                f"the taskData of a {TRACKING_REPORT_TASK} is neither a JSON object nor the "
                f"base64 of one: {exc}"
            ) from None
    if not isinstance(data, dict):
        raise UnreadableError(f"the taskData of a {TRACKING_REPORT_TASK} is not a JSON object")
    return data


def _tracking_report(report: Any, position: int) -> Report:
    """One of a TrackingReportTask's ``trackingReports``."""
    if not isinstance(report, dict):
        raise UnreadableError("not a JSON object")
    task_id = report.get("jobTaskId")
    if not isinstance(task_id, str) or not _is_text(task_id):
        raise UnreadableError("no jobTaskId")
    status = report.get("status")
    if status not in tuple(Status):
        raise UnreadableError(
            f"status {safe(repr(status)[:60])} of {safe(task_id[:120])!r} is not "
            + ", ".join(Status)
        )
    attempt = report.get("retries")
    if attempt is not None and not _is_count(attempt):
        raise UnreadableError(f"retries {safe(repr(attempt)[:60])} is not a count")
    return _report(
        task_id,
        Status(status),
        # The reference framework always sends the percentage; 0 is its default.
        percent=_percent(report.get("estimatedPercentageCompleted", 0)),
        attempt=attempt,
        failure=_reported_failure(report.get("failure"), task_id)
        if status == Status.FAILED
        else None,
        position=position,
    )


def _reported_failure(failure: Any, task_id: str) -> Failure:
    """A worker's own failure details, as the job's failure of the item ``task_id``: its id is
    the item's task id, as every item failure's is, and the worker's own ``failureId`` leads
    the message. The reference framework leaves out ``failureMessage`` when the task had no
    data; the other fields it always sends."""
    if not isinstance(failure, dict):
        raise UnreadableError("a Failed report without its failure")
    missing = [
        name for name in ("failureId", "failureSource") if not isinstance(failure.get(name), str)
    ]
    time = failure.get("failureTime")
    if isinstance(time, bool) or not isinstance(time, str | int | float):
        missing.append("failureTime")
    message = failure.get("failureMessage")
    if message is not None and not isinstance(message, str):
        missing.append("failureMessage")
    if missing:
        raise UnreadableError(f"a failure without a text {', '.join(missing)}")
    try:
        read = Failure.model_validate(
            {
                "failureId": task_id,
                "failureTime": time,
                "failureSource": safe(failure["failureSource"][:_NAME_LIMIT]),
                "failureMessage": _text(
                    ": ".join(
                        part for part in (safe(failure["failureId"][:_NAME_LIMIT]), message) if part
                    )
                ),
            }
        )
    except (ValidationError, OverflowError):
        raise UnreadableError(f"failureTime {safe(repr(time)[:60])} is not a time") from None
    if read.failure_time.tzinfo is None:  # Java's dates are UTC
        read = read.model_copy(update={"failure_time": read.failure_time.replace(tzinfo=UTC)})
    return read


def named(position: int | None, reason: str) -> str:
    """``reason`` said of the report at ``position`` of its message's trackingReports."""
    return reason if position is None else f"trackingReports[{position}]: {reason}"


def with_reports(body: bytes, positions: list[int]) -> bytes:
    """A copy of a TrackingReportTask that carries only the reports at ``positions``: what goes
    to the dead-letter queue when the others were recorded."""
    message = _object(body)
    reports = _task_data(message)["trackingReports"]
    kept = [reports[position] for position in positions]
    return json.dumps({**message, "taskData": {"trackingReports": kept}}).encode()


def _percent(value: Any) -> int:
    """A percentage from 0 to 100, in whole percent (rounded down, so never 100 too soon)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise UnreadableError(
            f"estimatedPercentageCompleted {safe(repr(value)[:60])} is not 0 to 100"
        )
    return int(value)


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
