"""The engine's contract as running workflows know it: the names in their histories, and
payloads that are the JSON of a model's fields, whatever module the model lives in."""

from __future__ import annotations

import json

from temporalio.contrib.pydantic import pydantic_data_converter

from jobservice.execution import names
from jobservice.execution.job import JobKey
from jobservice.execution.tree import TreeWord, Word

NAMES = {
    "JOB_WORKFLOW": "JobWorkflow",
    "BATCH_WORKFLOW": "BatchWorkflow",
    "SPLIT_BATCH": "split_batch",
    "DISPATCH_ITEMS": "dispatch_items",
    "RECORD_JOB": "record_job",
    "SETTLE_PREREQUISITES": "settle_prerequisites",
    "NOTIFY_DEPENDENTS": "notify_dependents",
    "TELL_TREE": "tell_tree",
    "PAUSE_SIGNAL": "pause",
    "RESUME_SIGNAL": "resume",
    "PROGRESS_SIGNAL": "progress",
    "PROGRESS_QUERY": "progress",
    "TRACKING_SIGNAL": "tracking",
    "PREREQUISITES_SIGNAL": "prerequisites",
    "TRACKING_REPORTS_PATCH": "tracking-reports",
    "ITEMS_MEMO": "items",
    "IN_FLIGHT_PATCH": "in-flight-in-hand",
    "BROKER_UNAVAILABLE": "BrokerUnavailable",
}
"""What the histories of running jobs name: a workflow replaying them needs the same."""


def test_the_names_in_running_histories_stay_as_they_are() -> None:
    assert {name: getattr(names, name) for name in NAMES} == NAMES


def test_a_payload_is_the_json_of_its_fields_and_names_no_class() -> None:
    # Given the converter jobservice.temporal.connection.connect gives every client and worker
    converter = pydantic_data_converter.payload_converter
    word = TreeWord(partition_id="p", job_id="j", word=Word.CANCEL)

    # When a model crosses Temporal
    [payload] = converter.to_payloads([word])

    # Then its payload holds its fields alone, and reads back as any model of those fields
    assert dict(payload.metadata) == {"encoding": b"json/plain"}
    assert json.loads(payload.data) == {"partition_id": "p", "job_id": "j", "word": "cancel"}
    [key] = converter.from_payloads([payload], [JobKey])
    assert key == JobKey(partition_id="p", job_id="j")
