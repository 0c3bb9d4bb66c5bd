"""API keys over HTTP: a key opens its partitions only, and shows nothing of the others."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from jobservice.jobs.public import API_KEY_HEADER
from jobservice.processes.devserver import free_port
from jobservice.service.job_service import JobService
from jobservice.settings import ApiSettings, Settings
from jobservice.web.app import create_app
from jobservice.web.security import InsecureSettingsError
from tests.conftest import unique
from tests.integration import processes
from tests.integration.support import API, api_client, eventually, job_body

pytestmark = pytest.mark.both_databases

KEY_A, KEY_B, KEY_ALL = "key-of-a", "key-of-b", "key-of-operations"
# Every kind of endpoint under a partition, on the job "same" that both partitions have.
ENDPOINTS = [
    ("PUT", "jobs/same"),
    ("GET", "jobs/same"),
    ("GET", "jobs"),
    ("GET", "jobStats/count"),
    ("DELETE", "jobs/same"),
    ("POST", "jobs:delete"),
    ("POST", "jobs:cancel"),
    ("POST", "jobs/same/pause"),
    ("POST", "jobs/same/resume"),
    ("POST", "jobs/same/cancel"),
    ("GET", "jobs/same/status"),
    ("GET", "jobs/same/isActive"),
    ("GET", "jobs/same/failures"),
]
Clients = dict[str | None, httpx.AsyncClient]
FROM_ANOTHER_JOB = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
}
"""What a cancel, a pause, a delete or a word to the tree leaves in a workflow's history."""


@pytest.fixture
def partitions() -> tuple[str, str]:
    return unique("a"), unique("b")


@pytest.fixture
def settings(settings: Settings, partitions: tuple[str, str]) -> Settings:
    """The test's settings with a key for each of its two partitions, and one for all."""
    a, b = partitions
    keys = {KEY_A: [a], KEY_B: [b], KEY_ALL: ["*"]}
    return settings.model_copy(update={"api": ApiSettings(keys=keys)})


@pytest.fixture
def app(service: JobService) -> FastAPI:
    return create_app(service)


@pytest.fixture
async def clients(app: FastAPI) -> AsyncIterator[Clients]:
    """A client for each key, sent in the X-API-Key header; None: a client without one."""
    async with contextlib.AsyncExitStack() as stack:
        yield {
            key: await stack.enter_async_context(
                api_client(app, {API_KEY_HEADER: key} if key else None)
            )
            for key in (None, KEY_A, KEY_B, KEY_ALL)
        }


async def call(
    client: httpx.AsyncClient, method: str, partition: str, path: str, name: str = "numbers"
) -> httpx.Response:
    body = {**job_body(), "name": name} if method == "PUT" else None
    return await client.request(method, f"{API}/partitions/{partition}/{path}", json=body)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_without_a_known_key_every_partition_endpoint_is_a_401(
    app: FastAPI, partitions: tuple[str, str], method: str, path: str
) -> None:
    a, _ = partitions
    required = (
        f"an API key is required: send it in the {API_KEY_HEADER} header, "
        "or as Authorization: Bearer <key>"
    )
    for headers, message in [
        ({}, required),
        ({API_KEY_HEADER: "nobody's"}, "the API key is not known"),
        ({"Authorization": "Bearer nobody's"}, "the API key is not known"),
        ({"Authorization": "Bearer "}, required),
        ({"Authorization": f"Basic {KEY_A}"}, required),
    ]:
        async with api_client(app, headers) as client:
            response = await call(client, method, a, path)
        assert response.status_code == 401, (headers, response.text)
        assert response.json() == {"message": message}
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_a_key_of_one_partition_is_a_403_on_another_and_changes_nothing_there(
    clients: Clients, partitions: tuple[str, str], method: str, path: str
) -> None:
    _, b = partitions
    assert (await call(clients[KEY_B], "PUT", b, "jobs/same", name="of-b")).status_code == 201

    response = await call(clients[KEY_A], method, b, path)

    assert response.status_code == 403, response.text
    assert response.json() == {"message": f"this API key may not use partition {b!r}"}
    job = await call(clients[KEY_B], "GET", b, "jobs/same")
    assert job.status_code == 200
    assert (job.json()["name"], job.json()["status"]) == ("of-b", "Waiting")
    assert (await call(clients[KEY_B], "GET", b, "jobStats/count")).json() == 1


async def test_a_partition_shows_nothing_of_another_with_a_job_of_the_same_id(
    clients: Clients, partitions: tuple[str, str], client: Client
) -> None:
    # Given each partition has its own job "same", told apart by name
    a, b = partitions
    assert (await call(clients[KEY_A], "PUT", a, "jobs/same", name="of-a")).status_code == 201
    assert (await call(clients[KEY_B], "PUT", b, "jobs/same", name="of-b")).status_code == 201
    other = await call(clients[KEY_B], "PUT", b, "jobs/other", name="of-b")
    assert other.status_code == 201

    async def seen_from_b(path: str, **params: str) -> object:
        response = await clients[KEY_B].get(f"{API}/partitions/{b}/{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    job = await seen_from_b("jobs/same")
    assert isinstance(job, dict)
    assert job["name"] == "of-b"
    listed = await seen_from_b("jobs", sort="id:asc")
    assert isinstance(listed, list)
    assert [(j["id"], j["name"]) for j in listed] == [("other", "of-b"), ("same", "of-b")]
    assert await seen_from_b("jobs", filter="name==of-a") == []
    assert await seen_from_b("jobStats/count") == 2
    assert await seen_from_b("jobStats/count", filter="name==of-a") == 0

    # When B cancels and then deletes all of its jobs
    cancelled = await clients[KEY_B].post(f"{API}/partitions/{b}/jobs:cancel")
    assert cancelled.json() == {"jobsCanceled": 2}
    deleted = await clients[KEY_B].post(f"{API}/partitions/{b}/jobs:delete")
    assert deleted.json() == {"jobsDeleted": 2}

    # Then A's job of the same id is still there, untouched: its row, and its workflow, which
    # no worker runs here, so whatever B's calls sent it would stay in its history
    job_of_a = await call(clients[KEY_A], "GET", a, "jobs/same")
    assert (job_of_a.json()["name"], job_of_a.json()["status"]) == ("of-a", "Waiting")
    assert (await call(clients[KEY_B], "GET", b, "jobs/same")).status_code == 404
    workflow_of_a = client.get_workflow_handle(f"job/{a}/same")
    assert (await workflow_of_a.describe()).status is WorkflowExecutionStatus.RUNNING
    events = [event.event_type async for event in workflow_of_a.fetch_history_events()]
    assert events[0] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    assert not set(events) & FROM_ANOTHER_JOB, [EventType.Name(e) for e in events]


async def test_a_key_for_every_partition_reaches_them_all(
    clients: Clients, partitions: tuple[str, str]
) -> None:
    a, b = partitions
    elsewhere = unique("c")
    for partition, name in [(a, "of-a"), (b, "of-b"), (elsewhere, "of-c")]:
        created = await call(clients[KEY_ALL], "PUT", partition, "jobs/same", name=name)
        assert created.status_code == 201, created.text
        job = await call(clients[KEY_ALL], "GET", partition, "jobs/same")
        assert job.json()["name"] == name
        assert (await call(clients[KEY_ALL], "GET", partition, "jobStats/count")).json() == 1
    assert (await call(clients[KEY_A], "GET", a, "jobs/same")).json()["name"] == "of-a"


@pytest.mark.parametrize(
    "headers",
    [
        {API_KEY_HEADER: KEY_A},
        {"Authorization": f"Bearer {KEY_A}"},
        {"Authorization": f"bearer  {KEY_A} "},
        # The X-API-Key header is read first.
        {API_KEY_HEADER: KEY_A, "Authorization": "Bearer nobody's"},
    ],
)
async def test_a_key_is_sent_as_x_api_key_or_as_a_bearer_token(
    app: FastAPI, partitions: tuple[str, str], headers: dict[str, str]
) -> None:
    a, _ = partitions
    async with api_client(app, headers) as client:
        assert (await call(client, "PUT", a, "jobs/j")).status_code == 201
        assert (await call(client, "GET", a, "jobs/j/status")).json() == "Waiting"


async def test_ping_health_the_docs_and_the_document_need_no_key(clients: Clients) -> None:
    anonymous = clients[None]
    assert (await anonymous.get(f"{API}/ping")).json() == {"success": True}
    health = await anonymous.get(f"{API}/health")
    assert (health.json()["temporal"], health.json()["database"]) == ("ok", "ok")
    # nor do the probes and the metrics at the root, which say nothing of any partition
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await anonymous.get(path)).status_code == 200, path
    docs = await anonymous.get("/job-service-ui")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()

    # The document tells clients where a key is needed and how to send it
    document = (await anonymous.get(f"{API}/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            keyed = "/partitions/" in path
            assert ("security" in operation) is keyed, path


def test_an_open_api_document_asks_for_no_key() -> None:
    document = create_app(settings=Settings(api=ApiSettings())).openapi()
    assert "securitySchemes" not in document["components"]
    assert not any("security" in op for ops in document["paths"].values() for op in ops.values())


def test_production_without_keys_is_refused_when_the_app_is_made() -> None:
    with pytest.raises(InsecureSettingsError, match="JOBSERVICE_API__KEYS"):
        create_app(settings=Settings(api=ApiSettings(production=True)))
    create_app(settings=Settings(api=ApiSettings(production=True, keys={KEY_A: ["a"]})))


@pytest.mark.parametrize("command", ["api", "dev"])
async def test_the_serving_commands_refuse_production_without_keys(
    settings: Settings, command: str
) -> None:
    # The command reads its keys from the environment, which has none; dev refuses before
    # it starts anything, rather than running with its API dead
    env = {"JOBSERVICE_API__PRODUCTION": "true", "JOBSERVICE_API__PORT": str(free_port())}
    result = await asyncio.to_thread(processes.run, settings, [command], 60, env)
    assert result.returncode == 2, result.stderr
    assert "JOBSERVICE_API__PRODUCTION is set but no API keys" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_api_command_in_production_asks_for_the_keys_of_its_settings(
    settings: Settings,
) -> None:
    port = free_port()
    api = processes.start(
        settings,
        "api",
        extra_env={
            "JOBSERVICE_API__PRODUCTION": "true",
            "JOBSERVICE_API__PORT": str(port),
            "JOBSERVICE_API__KEYS": f'{{"{KEY_A}": ["team-a"]}}',
        },
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}{API}") as http:

            async def serving() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/ping")).status_code == 200
                return False

            await eventually(serving, within=60)
            assert (await http.get("/partitions/team-a/jobs")).status_code == 401
            keyed = await http.get("/partitions/team-a/jobs", headers={API_KEY_HEADER: KEY_A})
            assert keyed.status_code == 200
            assert keyed.json() == []
            other = await http.get("/partitions/team-b/jobs", headers={API_KEY_HEADER: KEY_A})
            assert other.status_code == 403
    finally:
        api.send_signal(signal.SIGTERM)
        await asyncio.to_thread(api.communicate, timeout=60)
    assert api.returncode == 0
