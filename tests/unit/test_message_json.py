"""Task messages and tracking reports as JSON: orjson where it can, the standard library
where orjson refuses, and the same refusals as before."""

from __future__ import annotations

import json

import pytest

from jobservice.messages import TaskMessage, json_bytes, parse_json
from jobservice.tracking.reports import UnreadableError, read_reports


def test_a_task_messages_json_reads_back_as_its_envelope() -> None:
    message = TaskMessage(
        job_task_id="p:j.1.2",
        task_classifier="c",
        task_api_version=1,
        task_data={"item": "dü", "params": {"k": "v"}, "n": 2**40, "f": 0.5},
        to="queue",
        correlation_id="p:j",
        tracking_pipe="tracking",
    )
    assert json.loads(message.to_json()) == message.to_dict()


def test_what_orjson_refuses_the_standard_library_writes_or_refuses() -> None:
    assert json.loads(json_bytes({1: "a"})) == {"1": "a"}  # keys that are not text
    assert json.loads(json_bytes({"big": 2**70})) == {"big": 2**70}  # past 64 bits
    with pytest.raises(TypeError):
        json_bytes({"set": {1, 2}})


def test_what_orjson_cannot_read_the_standard_library_reads_or_refuses() -> None:
    assert parse_json(b'{"big": 1180591620717411303424}') == {"big": 2**70}
    with pytest.raises(ValueError, match="Expecting"):
        parse_json(b"{not json")


def test_a_report_nested_past_any_depth_is_refused_saying_so() -> None:
    with pytest.raises(UnreadableError, match="nested too deeply"):
        read_reports(b"[" * 100_000 + b"]" * 100_000, "tracking")
    with pytest.raises(UnreadableError, match="not JSON"):
        read_reports(b"\xff", "tracking")
