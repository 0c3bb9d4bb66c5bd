"""The Python client against the REST API served by uvicorn on a real socket.

The waiting client runs in a thread, as a synchronous application would call it, while the
event loop serves the API and runs the worker.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.client import (
    AsyncJobServiceClient,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    JobServiceClient,
    JobServiceClientError,
    NotAuthorizedError,
    NotFoundError,
    UnreachableError,
)
from jobservice.db.store import JobStore
from jobservice.errors import JobConflictError, JobNotFoundError, UnavailableError
from jobservice.jobs.definition import NewJob
from jobservice.jobs.public import JobPublic
from jobservice.jobs.status import JobStatus
from jobservice.plugins.registry import Registry
from jobservice.processes.devserver import free_port
from jobservice.service.job_service import JobService
from jobservice.settings import ApiSettings, Settings
from jobservice.web.app import BASE_PATH
from jobservice.web.server import serve_api
from tests.conftest import unique
from tests.integration.support import eventually, job


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The integration settings, with the API on a port of this test's own."""
    return settings.model_copy(update={"api": ApiSettings(port=free_port())})


@pytest.fixture
def partition() -> str:
    return unique("p")


@pytest.fixture
async def api(service: JobService) -> AsyncIterator[str]:
    """The URL of the API, served over ``service`` until the test ends."""
    async with serving(service) as url:
        yield url


@asynccontextmanager
async def serving(service: JobService) -> AsyncIterator[str]:
    """Serve the API over ``service`` on its configured port; the server's root URL."""
    stop = asyncio.Event()
    server = asyncio.create_task(serve_api(service, stop))
    url = f"http://{service.settings.api.host}:{service.settings.api.port}"

    async def answers() -> bool:
        if server.done():
            server.result()  # it could not serve: say why
        try:
            await probe.ping()
        except UnreachableError:
            return False
        return True

    try:
        async with AsyncJobServiceClient(url, timeout=1) as probe:
            await eventually(answers, within=30, interval=0.05)
        yield url
    finally:
        stop.set()
        await server


def a_job(items: int = 10, **fields: Any) -> NewJob:
    """A job of ``items`` numbers for the recording handler."""
    return NewJob.from_definition(job("range", f"0-{items}", **fields))


def ids(jobs: list[JobPublic]) -> list[str]:
    return [found.id for found in jobs]


async def test_create_says_created_then_not_then_conflicts(api: str, partition: str) -> None:
    # Given no worker serves this test's task queue, the job stays Waiting
    def scenario() -> None:
        with JobServiceClient(api, partition=partition) as jobs:
            assert jobs.create_job("j1", a_job(labels={"team": "a"})) is True
            assert jobs.create_job("j1", a_job(labels={"team": "a"})) is False
            with pytest.raises(ConflictError) as conflict:
                jobs.create_job("j1", a_job(items=11))
            assert conflict.value.status == 403
            assert "already exists" in str(conflict.value)
            assert isinstance(conflict.value, JobConflictError)

            created = jobs.get_job("j1")
            assert (created.id, created.status, created.labels) == (
                "j1",
                JobStatus.WAITING,
                {"team": "a"},
            )
            assert created.create_time > 0
            assert jobs.job_status("j1") is JobStatus.WAITING
            assert jobs.job_is_active("j1") is True

    await asyncio.to_thread(scenario)


async def test_a_job_runs_to_completed_through_the_async_client(
    api: str, worker: Worker, partition: str
) -> None:
    async with AsyncJobServiceClient(api, partition=partition) as jobs:
        # A flat job definition is sent as the task it stands for
        assert await jobs.create_job("run", job("range", "0-40", name="forty")) is True

        async def completed() -> bool:
            return await jobs.job_status("run") is JobStatus.COMPLETED

        await eventually(completed, within=60)
        done = await jobs.get_job("run")
        assert done.name == "forty"
        assert (done.counts.total, done.counts.completed, done.counts.failed) == (40, 40, 0)
        assert done.percentage_complete == 100
        assert await jobs.job_is_active("run") is False
        health = await jobs.health()
        assert (health.healthy, health.temporal, health.database) == (True, "ok", "ok")


async def test_list_filters_sorts_pages_and_counts(api: str, partition: str) -> None:
    elsewhere = unique("p")

    def scenario() -> None:
        # The API's own URL, as ``api_url`` gives it, serves as well as the server's root
        with JobServiceClient(api + BASE_PATH, partition=partition) as jobs:
            for job_id, team in [("a-1", "red"), ("a-2", "blue"), ("b-1", "red"), ("c-1", None)]:
                jobs.create_job(job_id, a_job(labels={"team": team} if team else {}))
            jobs.create_job("a-3", a_job(), partition=elsewhere)

            assert ids(jobs.list_jobs(sort="id:asc")) == ["a-1", "a-2", "b-1", "c-1"]
            assert ids(jobs.list_jobs(sort="id:desc", limit=2, offset=1)) == ["b-1", "a-2"]
            assert ids(jobs.list_jobs(job_id_starts_with="a-", sort="id:asc")) == ["a-1", "a-2"]
            red = jobs.list_jobs(filter="labels.team==red", sort="id:asc")
            assert ids(red) == ["a-1", "b-1"]
            labelled = jobs.list_jobs(label_exist="team", sort="labels.team:asc")
            assert ids(labelled) == ["a-2", "a-1", "b-1"]
            assert jobs.list_jobs(status_type="Completed") == []
            assert jobs.count_jobs(filter="id==a*") == 2
            assert jobs.count_jobs(status_type="NotFinished", label_exist="team") == 3
            assert jobs.count_jobs(partition=elsewhere) == 1
            assert ids(jobs.list_jobs(partition=elsewhere)) == ["a-3"]

            with pytest.raises(BadRequestError) as bad_sort:
                jobs.list_jobs(sort="colour:asc")
            assert bad_sort.value.status == 400
            assert "colour" in bad_sort.value.message

    await asyncio.to_thread(scenario)


async def test_pause_resume_cancel_and_a_move_the_status_refuses(
    api: str, worker: Worker, partition: str
) -> None:
    async with AsyncJobServiceClient(api, partition=partition) as jobs:
        # Given a job far longer than the test: 20,000 items of 10 ms each
        await jobs.create_job("ctl", job("range", "0-20000", target_pipe="local:sleep"))

        async def active() -> bool:
            return await jobs.job_status("ctl") is JobStatus.ACTIVE

        await eventually(active)
        await jobs.resume_job("ctl")  # resuming an Active job changes nothing, as the reference
        assert await jobs.job_status("ctl") is JobStatus.ACTIVE

        await jobs.pause_job("ctl")
        assert (await jobs.get_job("ctl")).status is JobStatus.PAUSED
        await jobs.resume_job("ctl")
        await jobs.cancel_job("ctl")
        assert await jobs.job_status("ctl") is JobStatus.CANCELLED
        await jobs.cancel_job("ctl")  # cancelling a Cancelled job changes nothing
        with pytest.raises(BadRequestError) as finished:
            await jobs.pause_job("ctl")
        assert "is Cancelled" in str(finished.value)


async def test_delete_bulk_cancel_bulk_delete_and_404(api: str, partition: str) -> None:
    def scenario() -> None:
        with JobServiceClient(api, partition=partition) as jobs:
            for job_id in ("x-1", "x-2", "y-1"):
                jobs.create_job(job_id, a_job())
            assert jobs.cancel_jobs(job_id_starts_with="x-") == 2
            assert jobs.cancel_jobs(job_id_starts_with="x-") == 0
            assert jobs.delete_jobs(filter="status==Cancelled") == 2
            assert ids(jobs.list_jobs()) == ["y-1"]

            jobs.delete_job("y-1")
            with pytest.raises(NotFoundError) as missing:
                jobs.get_job("y-1")
            assert missing.value.status == 404
            assert "no job 'y-1'" in str(missing.value)
            # The service layer's own error: code written against JobService catches it too
            assert isinstance(missing.value, JobNotFoundError)
            with pytest.raises(NotFoundError):
                jobs.delete_job("y-1")
            assert jobs.job_is_active("y-1") is False

    await asyncio.to_thread(scenario)


async def test_an_api_key_opens_only_its_partitions(
    client: Client, settings: Settings, registry: Registry, job_store: JobStore, partition: str
) -> None:
    keys = {"right-key": [partition], "other-key": ["elsewhere"]}
    keyed = JobService(
        client,
        store=job_store,
        settings=settings.model_copy(update={"api": ApiSettings(port=free_port(), keys=keys)}),
        registry=registry,
    )
    async with serving(keyed) as url, httpx.AsyncClient() as http:

        def as_(key: str | None) -> AsyncJobServiceClient:
            return AsyncJobServiceClient(url, partition=partition, api_key=key, http=http)

        with pytest.raises(NotAuthorizedError) as no_key:
            await as_(None).get_job("j")
        assert (no_key.value.status, no_key.value.message) == (
            401,
            "an API key is required: send it in the X-API-Key header, "
            "or as Authorization: Bearer <key>",
        )
        assert type(no_key.value) is NotAuthorizedError  # a 401, not a 403
        with pytest.raises(NotAuthorizedError) as wrong_key:
            await as_("wrong-key").create_job("j", a_job())
        assert (wrong_key.value.status, wrong_key.value.message) == (
            401,
            "the API key is not known",
        )
        with pytest.raises(ForbiddenError) as other_partition:
            await as_("other-key").get_job("j")
        assert other_partition.value.status == 403
        assert partition in other_partition.value.message

        async with as_("right-key") as jobs:
            assert await jobs.create_job("j", a_job()) is True
            assert (await jobs.get_job("j")).status is JobStatus.WAITING
        # A given HTTP client is its owner's to close
        assert not http.is_closed


async def test_no_api_there_is_an_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with JobServiceClient(url) as jobs, pytest.raises(UnreachableError) as waiting:
        jobs.get_job("j")
    async with AsyncJobServiceClient(url, partition="p") as jobs:
        with pytest.raises(UnreachableError) as awaiting:
            await jobs.pause_job("j")
    for error, path in [
        (waiting.value, "/partitions/default/jobs/j"),
        (awaiting.value, "/partitions/p/jobs/j/pause"),
    ]:
        assert str(error).startswith(f"cannot reach the job service at {url}{BASE_PATH}{path}: ")
        assert error.status is None
        assert isinstance(error, UnavailableError)


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_web_server_that_is_not_the_api_is_said_to_be_so(tmp_path: Path) -> None:
    # Given a plain web server with a page where a job would be, and nothing elsewhere
    page = tmp_path / "job-service/v1/partitions/default/jobs/j"
    page.parent.mkdir(parents=True)
    page.write_text("<html>a page</html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with JobServiceClient(url) as jobs:
            with pytest.raises(JobServiceClientError) as not_a_job:
                jobs.get_job("j")
            with pytest.raises(NotFoundError) as no_page:
                jobs.get_job("k")
    finally:
        server.shutdown()
        server.server_close()
    assert str(not_a_job.value).startswith(
        f"the answer from {url}{BASE_PATH}/partitions/default/jobs/j is not the job service's: "
    )
    assert not_a_job.value.status == 200
    # An error page that is not the API's message: its status line is all there is to say
    assert no_page.value.message == "HTTP 404 File not found"
