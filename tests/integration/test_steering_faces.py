"""Steering a job from every face: the REST API (a JSON merge patch), the CLI and the Python
client set a job's steering at submit and change it while it runs; what the job cannot take
is a 400 and exit 2, saying why."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from temporalio.worker import Worker

from jobservice.client import AsyncJobServiceClient, BadRequestError
from jobservice.jobs.definition import NewJob
from jobservice.processes.devserver import free_port
from jobservice.service.job_service import JobService
from jobservice.settings import ApiSettings, Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.support import API, eventually, job, job_body
from tests.integration.test_cli import submit_args
from tests.integration.test_client import serving


async def _active(http: httpx.AsyncClient, path: str) -> bool:
    status: str = (await http.get(path)).json()["status"]
    return status == "Active"


async def test_the_rest_api_tunes_a_running_job_with_a_merge_patch(
    http: httpx.AsyncClient, worker: Worker
) -> None:
    # Given a job submitted with its steering, slow enough to be tuned: 100 items a second
    path = f"{API}/partitions/default/jobs/{unique('rest')}"
    body = job_body(items=5000, priority=2, inFlightWindow=4000, rateLimit=100)
    assert (await http.put(path, json=body)).status_code == 201
    created = (await http.get(path)).json()
    assert (created["rateLimit"], created["priority"], created["inFlightWindow"]) == (100, 2, 4000)
    assert created["failureTolerance"] == "0"
    await eventually(lambda: _active(http, path))

    # When it is patched as a merge patch
    patched = await http.patch(
        path,
        content=json.dumps({"rateLimit": 250, "failureTolerance": "1%", "priority": None}),
        headers={"Content-Type": "application/merge-patch+json"},
    )

    # Then the answer is the job as it is now, and so is what GET shows
    assert patched.status_code == 200, patched.text
    tuned = patched.json()
    assert (tuned["rateLimit"], tuned["failureTolerance"], tuned["priority"]) == (250, "1%", 3)
    assert tuned["inFlightWindow"] == 4000  # left out: as it was
    assert (await http.get(path)).json()["rateLimit"] == 250

    # And plain JSON works too; null takes the limit away
    plain = await http.patch(path, json={"rateLimit": None})
    assert (plain.status_code, plain.json()["rateLimit"]) == (200, None)

    # And a value the job cannot take is a 400 that says why, and changes nothing
    for patch, reason in [
        ({"rateLimit": -1}, "is not a rate"),
        ({"inFlightWindow": 10**7}, "is over 50,000"),
        ({"speed": 3}, "speed cannot be tuned"),
    ]:
        refused = await http.patch(path, json=patch)
        assert refused.status_code == 400
        assert reason in refused.json()["message"]
    not_an_object = await http.patch(path, json=[1])
    assert not_an_object.status_code == 400
    assert (await http.get(path)).json()["inFlightWindow"] == 4000
    await http.post(f"{path}/cancel")

    # And a job that has ended cannot be tuned
    ended = await http.patch(path, json={"rateLimit": 5})
    assert (ended.status_code, "cannot be tuned" in ended.json()["message"]) == (400, True)
    missing = await http.patch(f"{API}/partitions/default/jobs/{unique('none')}", json={})
    assert missing.status_code == 404


async def test_the_cli_sets_and_tunes_a_jobs_steering_and_exits_2_on_a_refusal(
    settings: Settings, worker: Worker
) -> None:
    # Given a job submitted from the CLI with its steering
    job_id = unique("cli-tune")
    steering = ["--rate-limit", "100", "--window", "3000", "--priority", "1", "--json"]
    submitted = await asyncio.to_thread(
        processes.run, settings, submit_args(job_id, "0-5000", "local:noop", *steering)
    )
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert (job["rateLimit"], job["inFlightWindow"], job["priority"]) == (100, 3000, 1)

    # When it is tuned
    tuned = await asyncio.to_thread(
        processes.run,
        settings,
        ["tune", job_id, "--rate-limit", "300", "--failure-tolerance", "5", "--priority", "none"],
    )

    # Then it says what the job now runs under, and status shows it
    assert tuned.returncode == 0, tuned.stderr
    assert "300/s, window 3,000, tolerance 5, priority 3" in tuned.stdout
    status = await asyncio.to_thread(processes.run, settings, ["status", job_id])
    assert "limit    300/s" in status.stdout
    assert "window 3,000, failure tolerance 5, priority 3" in status.stdout
    shown = await asyncio.to_thread(processes.run, settings, ["status", job_id, "--json"])
    assert json.loads(shown.stdout)["failureTolerance"] == "5"

    # And what it cannot take exits 2 saying why
    for args, reason in [
        (["--rate-limit", "-5"], "is not a rate"),
        (["--rate-limit", "fast"], "is not a number"),
        ([], "say what to change"),
    ]:
        refused = await asyncio.to_thread(processes.run, settings, ["tune", job_id, *args])
        assert refused.returncode == 2, refused.stdout
        assert reason in refused.stderr
    await asyncio.to_thread(processes.run, settings, ["cancel", job_id])


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api": ApiSettings(port=free_port())})


async def test_the_client_tunes_a_job(
    worker: Worker, api_settings: Settings, service: JobService
) -> None:
    served = JobService(
        service.client, store=service.store, settings=api_settings, registry=service.registry
    )
    async with serving(served) as url, AsyncJobServiceClient(url) as jobs:
        job_id = unique("client-tune")
        await jobs.create_job(job_id, NewJob.from_definition(job("range", "0-5000", rate_limit=50)))

        tuned = await jobs.tune_job(job_id, {"rateLimit": 400, "inFlightWindow": 2000})
        assert (tuned.rate_limit, tuned.in_flight_window) == (400, 2000)
        assert (await jobs.get_job(job_id)).rate_limit == 400

        with pytest.raises(BadRequestError, match="is not one of 1"):
            await jobs.tune_job(job_id, {"priority": 0})
        await jobs.cancel_job(job_id)


async def test_two_changes_at_once_both_apply(service: JobService, worker: Worker) -> None:
    # Given a running job
    job_id = unique("both")
    await service.submit(job_id, job("range", "0-50000", "local:noop", rate_limit=100))

    # When two changes of different fields are sent at once, several times over
    for rate, priority in ((200, 2), (300, 4), (400, 1)):
        await asyncio.gather(
            service.tune(job_id, {"rateLimit": rate}),
            service.tune(job_id, {"priority": priority}),
        )

        # Then the job has both
        tuned = await service.get(job_id)
        assert (tuned.rate_limit, tuned.priority) == (rate, priority)
    await service.cancel(job_id)
