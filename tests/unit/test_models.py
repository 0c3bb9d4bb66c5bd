"""Job definitions, failure tolerances, task ids and task messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobservice.errors import InvalidJobError
from jobservice.jobs.definition import JobDefinition, NewJob
from jobservice.jobs.ids import validate_ids
from jobservice.jobs.status import JobStatus
from jobservice.jobs.taskids import (
    item_index,
    item_number,
    job_task_id,
    parse_job_task_id,
    split_item,
    workflow_id,
)
from jobservice.jobs.tolerance import FailureTolerance
from jobservice.messages import TaskMessage
from jobservice.plugins.registry import installed


@pytest.mark.parametrize(
    ("text", "failed", "total", "exceeded"),
    [
        (None, 1, 100, True),
        (None, 0, 100, False),
        ("3", 3, 10, False),
        ("3", 4, 10, True),
        ("10%", 10, 100, False),
        ("10%", 11, 100, True),
        ("2.5 %", 3, 100, True),
        (0, 1, 1, True),
    ],
)
def test_failure_tolerance(text: str | int | None, failed: int, total: int, exceeded: bool) -> None:
    assert FailureTolerance.parse(text).exceeded(failed, total) is exceeded


@pytest.mark.parametrize("text", ["many", "1.5", "101%", "-1", ""])
def test_failure_tolerance_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="failureTolerance"):
        FailureTolerance.parse(text)


def test_a_job_definition_reads_camel_case_and_keeps_lists_as_json_text() -> None:
    job = JobDefinition.model_validate(
        {
            "batchType": "list",
            "batchDefinition": ["a", "b"],
            "targetPipe": "local:noop",
            "taskMessageParams": {"n": 3, "s": "x"},
            "failureTolerance": "5%",
            "labels": {"team": "a"},
        }
    )

    assert job.batch_definition == '["a", "b"]'
    assert job.task_message_params == {"n": "3", "s": "x"}
    assert job.failure_tolerance.percent == 5
    digest = NewJob.from_definition(job).definition_hash()
    assert (
        digest
        == NewJob.from_definition(JobDefinition.model_validate(job.model_dump())).definition_hash()
    )
    assert (
        digest != NewJob.from_definition(job.model_copy(update={"name": "other"})).definition_hash()
    )


def test_a_job_definition_refuses_unknown_fields_and_empty_pipes() -> None:
    with pytest.raises(ValidationError, match="batchTypo"):
        JobDefinition.model_validate(
            {
                "batchTypo": "x",
                "batchType": "range",
                "batchDefinition": "0-1",
                "targetPipe": "local:noop",
            }
        )
    with pytest.raises(ValidationError, match="names no handler"):
        JobDefinition(batch_type="range", batch_definition="0-1", target_pipe="local:")


def test_exit_codes_follow_the_reference_job_caller() -> None:
    assert [s.exit_code for s in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)] == [
        0,
        1,
        3,
    ]


def test_task_ids_follow_the_reference_hierarchy() -> None:
    assert job_task_id("p", "j") == "p:j"
    assert job_task_id("p", "j", [2], 17) == "p:j.2.17"
    assert parse_job_task_id("p:j.2.17") == ("p", "j", (2, 17))
    assert workflow_id("p", "j", [2, 5]) == "job/p/j/2/5"
    assert split_item("p:j.2.17") == ("p:j.2", 17)
    assert split_item("p:j") is None
    assert split_item("p:j.2.x") is None
    with pytest.raises(ValueError, match="no 'partition:'"):
        parse_job_task_id("j.1")
    with pytest.raises(ValueError, match="non-numeric"):
        parse_job_task_id("p:j.x")


def test_items_are_numbered_after_their_batchs_sub_batches() -> None:
    assert item_number(0, 0) == 1
    assert item_number(3, 0) == 4  # sub-batches are 1 to 3
    assert item_index(3, 4) == 0
    assert item_index(3, 3) < 0  # a sub-batch's number is no item's
    assert [item_index(5, item_number(5, n)) for n in range(4)] == [0, 1, 2, 3]


def message(job_task_id: str, data: object = None, track_to: str | None = "out") -> TaskMessage:
    return TaskMessage(
        job_task_id=job_task_id,
        task_classifier="c",
        task_api_version=1,
        task_data=data,
        to="queue",
        correlation_id="p:j",
        track_to=track_to,
    )


def test_a_task_message_is_the_caf_envelope_with_a_stable_task_id() -> None:
    body = message("p:j.1.2", {"item": 5}).to_dict()

    assert body["version"] == 3
    assert body["taskStatus"] == "NEW_TASK"
    assert body["taskData"] == {"item": 5}
    assert body["tracking"]["jobTaskId"] == "p:j.1.2"
    assert body["tracking"]["trackTo"] == "out"
    assert message("p:j.1.2", track_to=None).to_dict()["tracking"]["trackTo"] is None
    assert body["sourceInfo"]["name"] == "jobservice"
    assert body["taskId"] == message("p:j.1.2").task_id != message("p:j.1.3").task_id


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(
        InvalidJobError, match="unknown batch type 'x'; known: directory, jsonl, list, range"
    ):
        installed().batch_plugin("x")
    assert installed().builder(None) is installed().builder("default")


@pytest.mark.parametrize(
    ("partition", "job_id", "problem"),
    [
        ("p", "", "empty"),
        ("p" * 41, "j", "longer than 40"),
        ("p", "a,b", "contains"),
        ("a(b)", "j", "contains"),
    ],
)
def test_ids_are_validated(partition: str, job_id: str, problem: str) -> None:
    with pytest.raises(InvalidJobError, match=problem):
        validate_ids(partition, job_id)


def test_a_job_files_track_to_is_its_tasks_target_pipe() -> None:
    flat = {"batchDefinition": "0-9", "batchType": "range", "targetPipe": "items"}
    tracked = NewJob.from_definition(JobDefinition.model_validate({**flat, "trackTo": "done"}))
    untracked = NewJob.from_definition(JobDefinition.model_validate(flat))
    assert tracked.task is not None and untracked.task is not None
    assert (tracked.task.target_pipe, untracked.task.target_pipe) == ("done", "items")


def test_null_means_left_out_as_reference_clients_send_it() -> None:
    task = {"taskClassifier": "c", "taskApiVersion": 1, "taskData": {}, "taskPipe": "q"}
    nulls = {"labels": None, "prerequisiteJobIds": [None, " "], "delay": None, "name": None}
    job = NewJob.model_validate({"task": {**task, "targetPipe": None}, **nulls})
    assert job == NewJob.model_validate({"task": task})
    assert job.definition_hash() == NewJob.model_validate({"task": task}).definition_hash()
