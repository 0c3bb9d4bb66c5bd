"""A pipe's limit from every face: the REST API (a merge patch of the pipe), the CLI
(``jobservice pipes``) and the Python client set, show and take away a pipe's limit; what
cannot be a limit is a 400 and exit 2, saying why; a key that does not open every partition
may read pipes but not limit them."""

from __future__ import annotations

import asyncio
import json

import httpx
from temporalio.worker import Worker

from jobservice.client import AsyncJobServiceClient, BadRequestError
from jobservice.service.job_service import JobService
from jobservice.settings import ApiSettings, Settings
from jobservice.web.app import create_app
from tests.conftest import unique
from tests.integration import processes
from tests.integration.support import API, api_client, eventually, job_body
from tests.integration.test_client import serving
from tests.integration.test_steering_faces import api_settings as api_settings


async def test_the_rest_api_limits_a_pipe_and_shows_its_jobs(
    http: httpx.AsyncClient, worker: Worker
) -> None:
    # Given a pipe with a job sending to it
    pipe = f"local:{unique('rest-pipe')}"
    job_path = f"{API}/partitions/default/jobs/{unique('piped')}"
    assert (await http.put(job_path, json=job_body(items=100_000, rateLimit=50))).status_code == 201

    # When its limit is set with a merge patch
    answer = await http.patch(
        f"{API}/pipes/{pipe}",
        content=json.dumps({"rateLimit": 1000}),
        headers={"Content-Type": "application/merge-patch+json"},
    )

    # Then the answer is the pipe as it is now, and the list shows it
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "name": pipe,
        "rateLimit": 1000.0,
        "recentItemsPerSecond": 0.0,
        "jobs": 0,
    }
    listed = {each["name"]: each for each in (await http.get(f"{API}/pipes")).json()}
    assert listed[pipe]["rateLimit"] == 1000
    assert listed["local:record"]["jobs"] >= 1  # the job's pipe, with no limit of its own

    # And what cannot be a limit is a 400 that says why, and changes nothing
    for body, reason in [
        ({"rateLimit": -1}, "is not a rate"),
        ({"rateLimit": "fast"}, "valid number"),
        ({"colour": "red"}, "a JSON object with its rateLimit"),
        ([1000], "a JSON object with its rateLimit"),
    ]:
        refused = await http.patch(f"{API}/pipes/{pipe}", json=body)
        assert refused.status_code == 400, refused.text
        assert reason in refused.json()["message"]
    assert (await http.get(f"{API}/pipes/{pipe}")).json()["rateLimit"] == 1000

    # And null takes the limit away
    freed = await http.patch(f"{API}/pipes/{pipe}", json={"rateLimit": None})
    assert (freed.status_code, freed.json()["rateLimit"]) == (200, None)
    await http.post(f"{job_path}/cancel")


async def test_only_a_key_for_every_partition_may_limit_a_pipe(service: JobService) -> None:
    # Given an API with a key for one partition and one for all
    keys = {"team-key": ["team"], "admin-key": ["*"]}
    settings = service.settings.model_copy(update={"api": ApiSettings(keys=keys)})
    app = create_app(
        JobService(
            service.client, store=service.store, settings=settings, registry=service.registry
        )
    )
    pipe = unique("keyed-pipe")
    async with api_client(app, {"X-API-Key": "team-key"}) as team:
        # Then the team's key reads pipes but may not limit one
        assert (await team.get(f"{API}/pipes/{pipe}")).status_code == 200
        refused = await team.patch(f"{API}/pipes/{pipe}", json={"rateLimit": 10})
        assert refused.status_code == 403
        assert "every partition" in refused.json()["message"]
    async with api_client(app, {"X-API-Key": "admin-key"}) as admin:
        assert (await admin.patch(f"{API}/pipes/{pipe}", json={"rateLimit": 10})).status_code == 200
        assert (await admin.patch(f"{API}/pipes/{pipe}", json={"rateLimit": None})).is_success
    async with api_client(app) as nobody:
        assert (await nobody.get(f"{API}/pipes")).status_code == 401


async def test_the_cli_limits_lists_and_frees_a_pipe(settings: Settings) -> None:
    pipe = unique("cli-pipe")

    limited = await asyncio.to_thread(
        processes.run, settings, ["pipes", "limit", pipe, "--rate-limit", "1500"]
    )
    assert limited.returncode == 0, limited.stderr
    assert f"pipe {pipe}: limit 1,500/s" in limited.stdout

    listed = await asyncio.to_thread(processes.run, settings, ["pipes", "list", "--json"])
    assert {"name": pipe, "rateLimit": 1500.0, "recentItemsPerSecond": 0.0, "jobs": 0} in (
        json.loads(listed.stdout)
    )
    table = await asyncio.to_thread(processes.run, settings, ["pipes", "list"])
    assert pipe in table.stdout

    for value, reason in [("-5", "is not a rate"), ("fast", "is not a number")]:
        refused = await asyncio.to_thread(
            processes.run, settings, ["pipes", "limit", pipe, "--rate-limit", value]
        )
        assert refused.returncode == 2, refused.stdout
        assert reason in refused.stderr

    freed = await asyncio.to_thread(
        processes.run, settings, ["pipes", "limit", pipe, "--rate-limit", "none"]
    )
    assert freed.returncode == 0, freed.stderr
    shown = await asyncio.to_thread(processes.run, settings, ["pipes", "show", pipe, "--json"])
    assert json.loads(shown.stdout)["rateLimit"] is None


async def test_the_client_limits_a_pipe(api_settings: Settings, service: JobService) -> None:
    served = JobService(
        service.client, store=service.store, settings=api_settings, registry=service.registry
    )
    pipe = f"local:{unique('client-pipe')}"
    async with serving(served) as url, AsyncJobServiceClient(url) as jobs:
        limited = await jobs.limit_pipe(pipe, 250)
        assert (limited.name, limited.rate_limit) == (pipe, 250)
        assert (await jobs.get_pipe(pipe)).rate_limit == 250
        assert pipe in {each.name for each in await jobs.list_pipes()}
        try:
            await jobs.limit_pipe(pipe, 0)
        except BadRequestError as exc:
            assert "is not a rate" in str(exc)
        else:
            raise AssertionError("a limit of 0 was taken")
        assert (await jobs.limit_pipe(pipe, None)).rate_limit is None
    await eventually(lambda: _no_limit(service, pipe))


async def _no_limit(service: JobService, pipe: str) -> bool:
    return (await service.pipe(pipe)).rate_limit is None
