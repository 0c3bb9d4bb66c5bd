"""The inputs of a job and of its BatchWorker task, and how their text becomes the job's fields.

Each input is named as the REST API's JSON names its field, so that the body is the inputs' values
by name, and a problem the job model finds names the input it is in. Text inputs hold one value,
a key=value textarea one entry a line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jobservice.web.dashboard.fields import FormField, posted

JOB_ID = "jobId"
PARTITION = "partition"
TYPE = "type"
BATCH_TYPE = "batchType"
TASK_MESSAGE_TYPE = "taskMessageType"
TARGET_PIPE = "targetPipe"
_LINES = "One key=value a line."


class _LineError(ValueError):
    """A problem on one line of a key=value input: it says which line."""


def _key_values(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        key, equals, value = (part.strip() for part in line.partition("="))
        if not line.strip():
            continue
        if not equals or not key:
            raise _LineError(f"line {number}: write key=value")
        if key in pairs:
            raise _LineError(f"line {number}: {key!r} is given twice")
        pairs[key] = value
    return pairs


def _seconds(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError("must be a whole number of seconds")
    return int(text)


def _timeout(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("must be a number of seconds") from None


def _job_ids(text: str) -> list[str]:
    return [job_id for job_id in re.split(r"[\s,]+", text) if job_id]


def _as_is(text: str) -> str:
    return text


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("must be a number") from None


def _whole(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError("must be a whole number")
    return int(text)


STEERING_READS: dict[str, Callable[[str], Any]] = {
    "rateLimit": _number,
    "inFlightWindow": _whole,
    "failureTolerance": _as_is,
    "priority": _whole,
}
"""How the text of each steering input becomes its value."""


def steering_value(name: str, posted_value: object) -> Any:
    """A steering input's value: None (the default) when it is empty. Text that is not a
    number for a number's input is passed as it is, for the job's checks to say why."""
    text = posted_value.strip() if isinstance(posted_value, str) else ""
    if not text:
        return None
    try:
        return STEERING_READS[name](text)
    except ValueError:
        return text


Input = tuple[FormField, Callable[[str], Any]]
"""An input, and what makes its text the field's value (a ValueError says what is wrong)."""
JOB_INPUTS: tuple[Input, ...] = (
    (FormField(JOB_ID, "Job id", "text", required=True), _as_is),
    (FormField(PARTITION, "Partition", "select", required=True), _as_is),
    (FormField("name", "Name", "text"), _as_is),
    (FormField("description", "Description", "textarea"), _as_is),
    (FormField("labels", "Labels", "textarea", description=_LINES), _key_values),
    (
        FormField(
            "prerequisiteJobIds",
            "Prerequisite jobs",
            "text",
            description="Ids of jobs of the partition that must complete first.",
        ),
        _job_ids,
    ),
    (
        FormField(
            "delay",
            "Delay (seconds)",
            "integer",
            default="0",
            description="Seconds to wait after the prerequisites.",
            minimum=0,
            maximum=2**31 - 1,
        ),
        _seconds,
    ),
    (
        FormField(
            "failureTolerance",
            "Failure tolerance",
            "text",
            description="Failed items the job accepts: a count (5) or a percentage (2.5%).",
        ),
        _as_is,
    ),
    (
        FormField(
            "rateLimit",
            "Rate limit (items/s)",
            "number",
            description="Items a second for the whole job, across every worker; none by default.",
        ),
        _number,
    ),
    (
        FormField(
            "priority",
            "Priority",
            "integer",
            description="1 (most urgent) to 5; 3 by default.",
            minimum=1,
            maximum=5,
        ),
        _whole,
    ),
    (
        FormField(
            "handlerTimeoutSeconds",
            "Handler timeout (seconds)",
            "number",
            description="Seconds an item handler of a local: target pipe may take per item.",
        ),
        _timeout,
    ),
)
TASK_INPUTS: tuple[Input, ...] = (
    (FormField(BATCH_TYPE, "Batch type", "select", required=True), _as_is),
    (FormField("batchDefinition", "Batch definition", "textarea", required=True), _as_is),
    (FormField(TASK_MESSAGE_TYPE, "Task message type", "select"), _as_is),
    (
        FormField("taskMessageParams", "Task message params", "textarea", description=_LINES),
        _key_values,
    ),
    (
        FormField(
            TARGET_PIPE,
            "Target pipe",
            "text",
            required=True,
            description="local:<handler> to handle items in the worker, or a queue's name.",
        ),
        _as_is,
    ),
)


def read_inputs(
    form: Mapping[str, object], inputs: Sequence[Input], problems: dict[str, str]
) -> dict[str, Any]:
    """The given inputs' values by name; a missing or unreadable one goes to ``problems``."""
    values: dict[str, Any] = {}
    for field, parse in inputs:
        try:
            text = (posted(form, field.name) or "").strip()
            if not text and field.required:
                raise ValueError("required")
            if text:
                values[field.name] = parse(text)
        except _LineError as exc:
            problems.setdefault(field.name, f"{field.name} {exc}")
        except ValueError as exc:
            problems.setdefault(field.name, f"{field.name}: {exc}")
    return values
