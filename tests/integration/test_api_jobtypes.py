"""Jobs made over HTTP from a job type and its parameters, with the type's folder of YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.worker import Worker

from jobservice.settings import Settings
from tests.integration.handlers import RecordingHandler
from tests.integration.support import API, eventually, job_body

pytestmark = pytest.mark.both_databases

NUMBERS = """\
description: The numbers 0 to items-1, each to a local handler.
parameters:
  type: object
  required: [items]
  additionalProperties: false
  properties:
    items: {type: integer, minimum: 1, maximum: 1000}
    handler: {type: string, default: record}
task:
  taskClassifier: BatchWorker
  taskApiVersion: 1
  taskPipe: batch-worker
  targetPipe: local:${parameters.handler}
  taskData:
    batchType: range
    batchDefinition: 0-${parameters.items}
    taskMessageType: default
    taskMessageParams: {}
    targetPipe: local:${parameters.handler}
"""


def with_numbers(settings: Settings, tmp_path: Path) -> Settings:
    """``settings`` with a job types folder holding the type ``numbers``."""
    folder = tmp_path / "jobtypes"
    folder.mkdir()
    (folder / "numbers.yaml").write_text(NUMBERS)
    return settings.model_copy(update={"job_types_dir": folder})


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test's settings, with a job types folder holding the type ``numbers``."""
    return with_numbers(settings, tmp_path)


async def test_a_job_of_a_type_runs_to_completed(
    http: httpx.AsyncClient, worker: Worker, recorder: RecordingHandler, partition: str
) -> None:
    url = f"{API}/partitions/{partition}/jobs/forty"
    body = {"name": "forty", "type": "numbers", "parameters": {"items": 40}}
    assert (await http.put(url, json=body)).status_code == 201

    async def completed() -> bool:
        return bool((await http.get(f"{url}/status")).json() == "Completed")

    await eventually(completed)
    job = (await http.get(url)).json()
    assert (job["name"], job["counts"]["completed"], job["counts"]["failed"]) == ("forty", 40, 0)
    assert sorted(recorder.seen) == list(range(40))

    # The same body again is the same job; other parameters under its id are another
    assert (await http.put(url, json=body)).status_code == 204
    other = await http.put(url, json={**body, "parameters": {"items": 41}})
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"type": "numbers", "parameters": {"items": "many"}},
            "parameters.items: 'many' is not of type 'integer'",
        ),
        (
            {"type": "numbers", "parameters": {"items": 0}},
            "parameters.items: 0 is less than the minimum of 1",
        ),
        ({"type": "numbers"}, "parameters: 'items' is a required property"),
        (
            {"type": "numbers", "parameters": {"items": 5, "colour": "red"}},
            "parameters: Additional properties are not allowed ('colour' was unexpected)",
        ),
        ({"type": "nope", "parameters": {}}, "unknown job type 'nope'; known: numbers"),
        (
            {**job_body(), "type": "numbers"},
            "Value error, give either task, or type with parameters; not both, not neither",
        ),
        ({**job_body(), "parameters": {}}, "Value error, parameters go with type, not with task"),
    ],
)
async def test_a_job_the_type_cannot_make_is_a_400_saying_why(
    http: httpx.AsyncClient, partition: str, fields: dict[str, Any], message: str
) -> None:
    response = await http.put(f"{API}/partitions/{partition}/jobs/refused", json=fields)
    assert response.status_code == 400, response.text
    assert response.json() == {"message": message}
    assert (await http.get(f"{API}/partitions/{partition}/jobs/refused")).status_code == 404
