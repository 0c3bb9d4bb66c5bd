"""The OpenAPI document the API serves, tried on the API itself with generated requests.

For every operation, schemathesis sends the document's examples, values at and past the
edges of its schemas, undeclared methods, and random requests, and checks each answer: never
a 5xx; a status code, content type, headers and body the document declares; a request
outside the schemas refused. It does not demand that a request inside them succeed: whether
a job can run depends on the installed plugins, and on rules JSON Schema does not state (a
task or a type, an RSQL filter); the API's own tests cover those answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from jobservice.db.rsql import MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, MAX_FILTER_TERMS
from jobservice.errors import JobNotFoundError
from jobservice.service.job_service import JobService
from jobservice.settings import ApiSettings, Settings
from jobservice.web.app import create_app
from tests.integration.support import API, api_client

OPENAPI = f"{API}/openapi.json"
# The path and body examples the document gives; each test makes that job afresh, so that
# the examples reach a Waiting job.
EXAMPLE_PARTITION, EXAMPLE_JOB_ID = "tenant-a", "nightly"


def _served_document() -> dict[str, Any]:
    """The document as an open API serves it; it depends on the settings, not on a service."""

    async def fetch() -> dict[str, Any]:
        async with api_client(create_app(settings=Settings(api=ApiSettings()))) as client:
            response = await client.get(OPENAPI)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    return asyncio.run(fetch())


DOCUMENT = _served_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def _example_job() -> dict[str, Any]:
    put = DOCUMENT["paths"]["/job-service/v1/partitions/{partition_id}/jobs/{job_id}"]["put"]
    examples = put["requestBody"]["content"]["application/json"]["examples"]
    example: dict[str, Any] = examples["task"]["value"]
    return example


@pytest.fixture
async def app(service: JobService) -> FastAPI:
    """The API over the real service, with the document's example job made afresh."""
    with contextlib.suppress(JobNotFoundError):
        await service.delete(EXAMPLE_JOB_ID, partition=EXAMPLE_PARTITION)
    app = create_app(service)
    async with api_client(app) as client:
        created = await client.put(
            f"{API}/partitions/{EXAMPLE_PARTITION}/jobs/{EXAMPLE_JOB_ID}", json=_example_job()
        )
        assert created.status_code == 201, created.text
    return app


@schema.parametrize()
@hypothesis.settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_answer_is_one_the_document_declares(
    case: schemathesis.Case[Any], app: FastAPI
) -> None:
    # schemathesis calls the app from an event loop of its own; the service's Temporal
    # client and job store serve any loop. The app is the same for every example.
    response = case.call(app=app)
    if case.method == "PATCH" and response.status_code == 503:
        # No worker runs here, and a change of steering is carried out by the job's worker:
        # the 503 the document declares, which schemathesis counts as a server error.
        assert "no worker polls" in response.json()["message"]
        return
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


def _nested(depth: int) -> str:
    return "(" * depth + "name==a" + ")" * depth


def _terms(count: int) -> str:
    return ";".join(["labels.team==red"] * count)


SELECTIONS = [
    ("GET", "/job-service/v1/partitions/{partition_id}/jobs"),
    ("GET", "/job-service/v1/partitions/{partition_id}/jobStats/count"),
    ("POST", "/job-service/v1/partitions/{partition_id}/jobs:cancel"),
    ("POST", "/job-service/v1/partitions/{partition_id}/jobs:delete"),
]
# Filters past each bound: nested, long, of many terms; some past the URL's bound too.
HOSTILE_FILTERS = st.one_of(
    st.integers(MAX_FILTER_DEPTH + 1, 3000).map(_nested),
    st.integers(MAX_FILTER_TERMS + 1, 3000).map(_terms),
    st.integers(MAX_FILTER_LENGTH + 1, 60_000).map(lambda length: "name==" + "a" * length),
)


@hypothesis.given(filter=HOSTILE_FILTERS, selection=st.sampled_from(SELECTIONS))
@hypothesis.example(filter=_nested(400), selection=SELECTIONS[0])
@hypothesis.example(filter=_nested(1000), selection=SELECTIONS[2])
@hypothesis.example(filter=_terms(900), selection=SELECTIONS[1])
@hypothesis.example(filter="name==" + "a" * 5000, selection=SELECTIONS[3])
@hypothesis.settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_deep_long_and_many_term_filters_get_answers_the_document_declares(
    app: FastAPI, filter: str, selection: tuple[str, str]
) -> None:
    method, path = selection
    case = schema[path][method].Case(
        path_parameters={"partition_id": EXAMPLE_PARTITION}, query={"filter": filter}
    )
    response = case.call_and_validate(app=app, excluded_checks=[positive_data_acceptance])
    assert response.status_code in (400, 414), response.text
    assert "filter" in response.json()["message"] or response.status_code == 414
