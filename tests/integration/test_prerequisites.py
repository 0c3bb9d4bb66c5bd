"""Prerequisite jobs and delay, over HTTP: a job waits until its prerequisites are Completed,
then for its delay; a failed or cancelled prerequisite fails the jobs that wait for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.execution.job import JobProgress
from jobservice.execution.names import PROGRESS_QUERY
from jobservice.jobs.status import JobStatus
from jobservice.jobs.taskids import workflow_id
from jobservice.service.job_service import JobService
from jobservice.web.app import create_app
from tests.conftest import unique
from tests.integration.handlers import RecordingHandler
from tests.integration.support import API, api_client, eventually, job_body

pytestmark = pytest.mark.both_databases


@pytest.fixture
async def jobs(service: JobService) -> AsyncIterator[Jobs]:
    async with api_client(create_app(service)) as client:
        yield Jobs(client, unique("p"))


class Jobs:
    """The jobs of one partition, over HTTP."""

    def __init__(self, http: httpx.AsyncClient, partition: str) -> None:
        self.http = http
        self.partition = partition
        self.url = f"{API}/partitions/{partition}/jobs"

    async def put(self, job_id: str, **fields: Any) -> httpx.Response:
        return await self.http.put(f"{self.url}/{job_id}", json=job_body(**fields))

    async def create(self, job_id: str, **fields: Any) -> None:
        response = await self.put(job_id, **fields)
        assert response.status_code == 201, response.text

    async def get(self, job_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.url}/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    async def until(
        self, job_id: str, status: str, *, reason: str = "", within: float = 60
    ) -> dict[str, Any]:
        """The job once it has ``status`` and a status reason holding ``reason``."""

        async def reached() -> bool:
            job = await self.get(job_id)
            return job["status"] == status and reason in (job["statusReason"] or "")

        await eventually(reached, within=within)
        return await self.get(job_id)


async def test_a_job_waits_for_its_prerequisites_then_runs(jobs: Jobs, worker: Worker) -> None:
    # Given a job waiting for two jobs, one of which does not exist yet
    await jobs.create("first", items=20)
    await jobs.create("after", items=10, prerequisiteJobIds=["first", "second"])
    await jobs.until("first", "Completed")

    # Then it waits, and says for which (once it has heard that the first one completed)
    reason = "waiting for prerequisite jobs second (second not created yet)"
    waiting = await jobs.until("after", "Waiting", reason=reason)
    assert waiting["statusReason"] == reason
    assert waiting["counts"]["total"] == 0

    # When the last prerequisite is created and completes, the job runs to the end
    await jobs.create("second", items=5)
    done = await jobs.until("after", "Completed")
    assert done["counts"]["completed"] == 10


async def test_a_delay_holds_the_job_after_its_prerequisites(jobs: Jobs, worker: Worker) -> None:
    await jobs.create("late", items=3, delay=2)
    await jobs.until("late", "Waiting", reason="delayed until", within=1.5)

    done = await jobs.until("late", "Completed")
    assert done["lastUpdateTime"] - done["createTime"] >= 2000


async def test_a_failed_prerequisite_fails_the_chain_naming_the_root(
    jobs: Jobs, worker: Worker
) -> None:
    # Given a chain root <- middle <- last, created before the root exists
    await jobs.create("middle", prerequisiteJobIds=["root"])
    await jobs.create("last", prerequisiteJobIds=["middle"])

    # When the root fails (half its items fail; no failures tolerated)
    await jobs.create("root", items=10, target="local:fail-odd")
    await jobs.until("root", "Failed")

    # Then every job down the chain fails, and its failure names the root
    for job_id in ("middle", "last"):
        failed = await jobs.until(job_id, "Failed")
        [failure] = failed["failures"]
        assert failure["failureSource"] == "prerequisite job root"
        assert failure["failureMessage"].startswith("prerequisite job 'root' failed: ")
    last = await jobs.get("last")
    assert "through prerequisite job 'middle'" in last["failures"][0]["failureMessage"]

    # And a new job waiting for a failed one is refused
    refused = await jobs.put("hopeless", prerequisiteJobIds=["middle"])
    assert refused.status_code == 400
    assert "prerequisite job 'middle' is Failed" in refused.json()["message"]


async def test_a_cancelled_prerequisite_fails_its_dependents(jobs: Jobs, worker: Worker) -> None:
    await jobs.create("held", prerequisiteJobIds=["never"])
    await jobs.create("dependent", prerequisiteJobIds=["held"])
    await jobs.until("dependent", "Waiting", reason="held")

    cancel = await jobs.http.post(f"{jobs.url}/held/cancel")
    assert cancel.status_code == 204

    failed = await jobs.until("dependent", "Failed")
    assert failed["failures"][0]["failureMessage"] == "prerequisite job 'held' was cancelled"


async def test_a_job_paused_while_waiting_stays_paused_until_resumed(
    jobs: Jobs, worker: Worker, client: Client, recorder: RecordingHandler
) -> None:
    # Given a job waiting for a prerequisite not created yet, paused while it waits (the
    # service writes Paused without a reason; the reason naming the prerequisite comes back
    # with the workflow's own write once it has taken the pause in)
    await jobs.create("waiter", prerequisiteJobIds=["gate"])
    await jobs.until("waiter", "Waiting", reason="gate")
    assert (await jobs.http.post(f"{jobs.url}/waiter/pause")).status_code == 204
    await jobs.until("waiter", "Paused", reason="gate")
    waiter = client.get_workflow_handle(workflow_id(jobs.partition, "waiter"))

    # When the prerequisite completes, and the waiter has heard: it no longer waits for it
    await jobs.create("gate", items=2)
    await jobs.until("gate", "Completed")

    async def heard() -> bool:
        return "gate" not in ((await jobs.get("waiter"))["statusReason"] or "")

    await eventually(heard, within=30)

    # Then it stays Paused with none of its items handled, as its row, its workflow and the
    # handler each say, and still so a few seconds later (it may have counted its items: the
    # split of its top batch runs once it starts, paused or not)
    async def held() -> None:
        row = await jobs.get("waiter")
        assert row["status"] == "Paused"
        counts = row["counts"]
        assert (counts["completed"], counts["failed"], counts["inFlight"]) == (0, 0, 0)
        progress = await waiter.query(PROGRESS_QUERY, result_type=JobProgress)
        assert progress.status is JobStatus.PAUSED
        counted = progress.progress
        assert (counted.completed, counted.failed, counted.in_flight) == (0, 0, 0)
        assert not [t for t in recorder.task_ids if t.startswith(f"{jobs.partition}:waiter.")]

    await held()
    await asyncio.sleep(3)
    await held()

    # And resume runs it to the end
    assert (await jobs.http.post(f"{jobs.url}/waiter/resume")).status_code == 204
    done = await jobs.until("waiter", "Completed")
    assert done["counts"]["completed"] == 10


@pytest.mark.parametrize(
    ("job_id", "prerequisites", "message"),
    [
        ("self", ["self"], "would wait for itself"),
        ("a", ["b"], "would wait for itself"),  # b waits for a
        ("c", ["bad.id"], "the prerequisite job id 'bad.id' contains '.': an id may not hold"),
    ],
)
async def test_a_job_that_could_never_run_is_a_400(
    jobs: Jobs, job_id: str, prerequisites: list[str], message: str
) -> None:
    await jobs.create("b", prerequisiteJobIds=["a"])
    response = await jobs.put(job_id, prerequisiteJobIds=prerequisites)
    assert response.status_code == 400
    assert message in response.json()["message"]
