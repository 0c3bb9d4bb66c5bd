"""The message contract: the published schemas, and how the tracking consumer reads what
workers report."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from examples.reference_worker import result_message
from jobservice.messages import TaskMessage
from jobservice.tracking.reports import (
    REPORTS_LIMIT,
    Status,
    UnreadableError,
    read_reports,
    with_reports,
)

SCHEMAS = Path(__file__).parents[2] / "schemas"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return loaded


def task(number: int = 17) -> dict[str, Any]:
    return TaskMessage(
        job_task_id=f"p:j.2.{number}",
        task_classifier="c",
        task_api_version=1,
        task_data={"item": number, "params": {}},
        to="documents",
        correlation_id="p:j",
        tracking_pipe="tracking",
        track_to="documents",
    ).to_dict()


def test_messages_match_the_published_schemas() -> None:
    jsonschema.validate(task(), schema("task-message"))
    result = json.loads(result_message(task(), "RESULT_SUCCESS", {"ok": 1}, None))
    jsonschema.validate(result, schema("tracking-result"))
    jsonschema.validate(
        {"jobTaskId": "p:j.2.17", "estimatedPercentageCompleted": 40}, schema("progress-report")
    )


def test_a_result_names_its_batch_and_number() -> None:
    body = result_message(task(), "RESULT_EXCEPTION", "disk full", "next-queue")

    (report,) = read_reports(body, "tracking").reports

    assert (report.batch_workflow, report.job_workflow) == ("job/p/j/2", "job/p/j")
    assert report.number == 17
    assert report.failure is not None
    assert report.failure.failure_message == "RESULT_EXCEPTION: disk full"
    assert report.failure.failure_source == "worker reference-worker"
    assert report.forward_to == "next-queue"


@pytest.mark.parametrize("to", [None, "", "tracking", "documents"])
def test_results_are_not_forwarded_back_to_the_tracking_or_target_pipe(to: str | None) -> None:
    (report,) = read_reports(result_message(task(), "RESULT_SUCCESS", {}, to), "tracking").reports
    assert report.forward_to is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"taskStatus": "RESULT_SUCCESS"}', "no tracking.jobTaskId"),
        (json.dumps({**task(), "taskStatus": "NEW_TASK"}).encode(), "unknown taskStatus"),
        (
            json.dumps({**task(), "taskStatus": "RESULT_SUCCESS", "tracking": {"jobTaskId": "x"}}),
            "no 'partition:' prefix",
        ),
        (
            json.dumps(
                {**task(), "taskStatus": "RESULT_SUCCESS", "tracking": {"jobTaskId": "p:j"}}
            ),
            "names a job, not an item",
        ),
        (b'{"jobTaskId": "p:j.1", "estimatedPercentageCompleted": 140}', "is not 0 to 100"),
    ],
)
def test_unreadable_messages_say_why(body: bytes | str, reason: str) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(UnreadableError, match=reason):
        read_reports(raw, "tracking")


def report_task(*reports: Any, encoded: bool = False, **fields: Any) -> bytes:
    """A TrackingReportTask as the reference worker framework sends it (``taskData`` in
    base64 when ``encoded``)."""
    data: Any = {"trackingReports": list(reports)}
    if encoded:
        data = base64.b64encode(json.dumps(data).encode()).decode()
    message = {
        "version": 3,
        "taskId": "t",
        "taskClassifier": "TrackingReportTask",
        "taskApiVersion": 1,
        "taskData": data,
        "taskStatus": "NEW_TASK",
        "context": {},
        "to": "tracking",
        **fields,
    }
    return json.dumps(message).encode()


FAILURE = {
    "failureId": "INVALID_TASK",
    "failureTime": 1_733_000_000_000,
    "failureSource": "worker-x",
    "failureMessage": "no such document",
}
FAILED = {"jobTaskId": "p:j.2.8", "status": "Failed", "failure": FAILURE}


@pytest.mark.parametrize("encoded", [False, True])
def test_a_tracking_report_task_speaks_of_items_of_several_batches(encoded: bool) -> None:
    body = report_task(
        {"jobTaskId": "p:j.2.7", "status": "Complete", "estimatedPercentageCompleted": 100},
        {"jobTaskId": "p:j.3.1", "status": "Progress", "estimatedPercentageCompleted": 40.9},
        {"jobTaskId": "q:k.1", "status": "Retry", "estimatedPercentageCompleted": 0, "retries": 2},
        {"jobTaskId": "p:j.2.8", "status": "Failed", "failure": FAILURE},
        encoded=encoded,
    )

    reading = read_reports(body, "tracking")

    assert reading.unusable == []
    assert [(r.batch_workflow, r.number, r.status) for r in reading.reports] == [
        ("job/p/j/2", 7, Status.COMPLETE),
        ("job/p/j/3", 1, Status.PROGRESS),
        ("job/q/k", 1, Status.RETRY),
        ("job/p/j/2", 8, Status.FAILED),
    ]
    assert reading.reports[1].percent == 40  # whole percent, never rounded up
    assert reading.reports[2].attempt == 2
    failure = reading.reports[3].failure
    assert failure is not None
    # the failure of the item, as the worker reported it; its time was epoch milliseconds
    assert (failure.failure_id, failure.failure_source) == ("p:j.2.8", "worker-x")
    assert failure.failure_message == "INVALID_TASK: no such document"
    assert failure.failure_time.isoformat() == "2024-11-30T20:53:20+00:00"
    assert [r.position for r in reading.reports] == [0, 1, 2, 3]
    jsonschema.validate(json.loads(report_task(FAILED)), schema("tracking-report-task"))


def test_a_failure_needs_no_message_and_may_give_its_time_as_text() -> None:
    failure = {k: v for k, v in FAILURE.items() if k != "failureMessage"}
    body = report_task({**FAILED, "failure": {**failure, "failureTime": "2024-11-30T20:53:20Z"}})

    (report,) = read_reports(body, "tracking").reports

    assert report.failure is not None
    assert report.failure.failure_message == "INVALID_TASK"
    assert report.failure.failure_time.isoformat() == "2024-11-30T20:53:20+00:00"


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        ([], "not a JSON object"),
        ({"status": "Complete"}, "no jobTaskId"),
        ({"jobTaskId": 7, "status": "Complete"}, "no jobTaskId"),
        ({"jobTaskId": "p:j.2.1", "status": "Done"}, "status 'Done' of 'p:j.2.1' is not"),
        ({"jobTaskId": "p:j.2.1", "status": ["Complete"]}, "status ['Complete']"),
        ({"jobTaskId": "p:j", "status": "Complete"}, "names a job, not an item"),
        ({"jobTaskId": "p:j.2.x", "status": "Complete"}, "non-numeric path"),
        (
            {"jobTaskId": "p:j.2.1", "status": "Progress", "estimatedPercentageCompleted": 101},
            "estimatedPercentageCompleted 101 is not 0 to 100",
        ),
        (
            {"jobTaskId": "p:j.2.1", "status": "Progress", "estimatedPercentageCompleted": -1},
            "is not 0 to 100",
        ),
        (
            {"jobTaskId": "p:j.2.1", "status": "Progress", "estimatedPercentageCompleted": True},
            "is not 0 to 100",
        ),
        (
            {"jobTaskId": "p:j.2.1", "status": "Progress", "estimatedPercentageCompleted": "50"},
            "is not 0 to 100",
        ),
        ({"jobTaskId": "p:j.2.1", "status": "Retry", "retries": -1}, "retries -1 is not a count"),
        ({"jobTaskId": "p:j.2.1", "status": "Failed"}, "a Failed report without its failure"),
        (
            {**FAILED, "failure": {"failureMessage": "m"}},
            "a failure without a text failureId, failureSource, failureTime",
        ),
        ({**FAILED, "failure": {**FAILURE, "failureId": None}}, "without a text failureId"),
        ({**FAILED, "failure": {**FAILURE, "failureMessage": 3}}, "without a text failureMessage"),
        ({**FAILED, "failure": {**FAILURE, "failureTime": "soon"}}, "failureTime 'soon' is not"),
        ({**FAILED, "failure": {**FAILURE, "failureTime": 1e300}}, "failureTime 1e+300 is not"),
    ],
)
def test_an_unusable_report_is_set_apart_from_the_usable_ones(report: Any, reason: str) -> None:
    good = {"jobTaskId": "p:j.2.9", "status": "Complete"}

    reading = read_reports(report_task(good, report), "tracking")

    assert [r.number for r in reading.reports] == [9]
    ((position, why),) = reading.unusable
    assert position == 1
    assert reason in why, why
    # alone, it makes the whole message unreadable, naming it
    with pytest.raises(UnreadableError, match=r"^no usable report: trackingReports\[0\]: "):
        read_reports(report_task(report), "tracking")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (report_task(taskData=None), "the taskData of a TrackingReportTask is not a JSON object"),
        (report_task(taskData="!!"), "the taskData of a TrackingReportTask is neither"),
        (
            report_task(taskData=base64.b64encode(b"[1]").decode()),
            "the taskData of a TrackingReportTask is neither",
        ),
        (report_task(taskData={}), "a TrackingReportTask without a trackingReports list"),
        (report_task(taskData={"trackingReports": {}}), "without a trackingReports list"),
        (report_task(taskApiVersion=2), "TrackingReportTask version 2 is newer than 1"),
        (
            report_task(*[{"jobTaskId": "p:j.1", "status": "Complete"}] * (REPORTS_LIMIT + 1)),
            f"{REPORTS_LIMIT + 1:,} trackingReports in one message",
        ),
    ],
)
def test_an_unreadable_tracking_report_task_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(UnreadableError, match=re.escape(reason)):
        read_reports(body, "tracking")


def test_an_empty_tracking_report_task_says_nothing() -> None:
    assert read_reports(report_task(), "tracking").reports == []


def test_a_progress_report_names_its_item_and_percentage() -> None:
    body = json.dumps({"jobTaskId": "p:j.2.17", "estimatedPercentageCompleted": 99.99})

    (report,) = read_reports(body.encode(), "tracking").reports

    assert (report.batch_workflow, report.number, report.status) == (
        "job/p/j/2",
        17,
        Status.PROGRESS,
    )
    assert report.percent == 99


def test_the_dead_letter_copy_carries_only_the_reports_named() -> None:
    reports = [{"jobTaskId": f"p:j.2.{n}", "status": "Complete"} for n in range(4)]
    body = report_task(*reports, encoded=True)

    copy = json.loads(with_reports(body, [1, 3]))

    assert copy["taskData"] == {"trackingReports": [reports[1], reports[3]]}
    assert copy["taskClassifier"] == "TrackingReportTask"
