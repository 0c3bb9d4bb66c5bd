"""The dashboard's Submit a job page: what it offers, the job it makes, what it refuses."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.integration.test_api_jobtypes import with_numbers

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test's settings, with a job types folder holding the type ``numbers``."""
    return with_numbers(settings, tmp_path)


async def test_the_form_offers_installed_plugins_and_job_types_as_fields(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.get("/dashboard/submit")

    assert answer.status_code == 200, answer.text
    page = answer.text
    assert '<option value="range">range</option>' in page
    assert '<option value="local:noop">' in page  # a target pipe to choose, or type a queue
    # The job type's schema as inputs: a whole number with its bounds, a text with its default
    assert 'name="parameters.items" value="" type="number" step="1" min="1" max="1000"' in page
    assert 'name="parameters.handler" value="record"' in page
    # the internal task batch type is not offered
    assert '<option value="task">' not in page


async def test_a_posted_batch_form_submits_the_job_and_shows_its_page(
    http: httpx.AsyncClient, service: JobService, partition: str
) -> None:
    form = {
        "jobId": "from-form",
        "partition": partition,
        "name": "made in the browser",
        "labels": "team=red",
        "batchType": "range",
        "batchDefinition": "0-25",
        "targetPipe": "local:record",
    }
    answer = await http.post("/dashboard/submit", data=form)

    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/dashboard/partitions/{partition}/jobs/from-form"
    done = await service.wait("from-form", partition=partition)
    assert done.counts.completed == 25 and done.labels == {"team": "red"}
    assert done.name == "made in the browser"


async def test_a_job_type_form_submits_its_parameters(
    http: httpx.AsyncClient, service: JobService, partition: str
) -> None:
    form = {"jobId": "typed", "partition": partition, "type": "numbers", "parameters.items": "7"}
    answer = await http.post("/dashboard/submit", data=form)

    assert answer.status_code == 303, answer.text
    assert (await service.wait("typed", partition=partition)).counts.completed == 7


async def test_a_refused_form_comes_back_filled_in_saying_what_to_change(
    http: httpx.AsyncClient, partition: str
) -> None:
    form = {
        "jobId": "bad",
        "partition": partition,
        "delay": "soon",
        "batchType": "range",
        "batchDefinition": "0-5",
        "targetPipe": "local:record",
    }
    answer = await http.post("/dashboard/submit", data=form)

    assert answer.status_code == 400
    assert "delay: " in answer.text and 'class="invalid"' in answer.text
    assert 'name="jobId" value="bad"' in answer.text  # nothing typed is lost
    # and a plugin that refuses the definition says so too
    refused = await http.post(
        "/dashboard/submit", data={**form, "delay": "", "batchDefinition": "five to ten"}
    )
    assert refused.status_code == 400 and "batchDefinition" in refused.text
