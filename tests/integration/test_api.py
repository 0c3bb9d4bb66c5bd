"""The REST API over HTTP, on SQLite and on PostgreSQL: every endpoint and its answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.db.engine import create_database_engine
from jobservice.db.store import JobStore
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from jobservice.web.app import create_app
from tests.conftest import unique
from tests.integration.support import API, api_client, eventually, job_body
from tests.scrape import sample, scrape

pytestmark = pytest.mark.both_databases


async def test_put_creates_then_is_idempotent_then_conflicts(
    http: httpx.AsyncClient, partition: str
) -> None:
    # Given no worker serves this test's task queue, the job stays Waiting
    url = f"{API}/partitions/{partition}/jobs/j1"
    assert (await http.put(url, json=job_body(labels={"team": "a"}))).status_code == 201
    assert (await http.put(url, json=job_body(labels={"team": "a"}))).status_code == 204
    conflict = await http.put(url, json=job_body(items=11))
    assert conflict.status_code == 403
    assert "already exists" in conflict.json()["message"]
    assert "(it differs in labels, task)" in conflict.json()["message"]

    job = (await http.get(url)).json()
    assert job["id"] == "j1"
    assert job["status"] == "Waiting"
    assert job["percentageComplete"] == 0
    assert job["failures"] == []
    assert job["labels"] == {"team": "a"}
    assert job["lastUpdateTime"] == job["createTime"] > 0


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        ("partitions/a.b/jobs/j", job_body(), "contains '.': an id may not hold"),
        ("partitions/p/jobs/" + "x" * 49, job_body(), "longer than 48"),
        ("partitions/" + "p" * 41 + "/jobs/j", job_body(), "longer than 40"),
        ("partitions/p/jobs/j", job_body(labels={"bad key": "v"}), "label key"),
        ("partitions/p/jobs/j", {**job_body(), "colour": "red"}, "colour: is not a field"),
        ("partitions/p/jobs/j", {**job_body(), "type": "t"}, "not both"),
        ("partitions/p/jobs/j", {"name": "no task"}, "not neither"),
        (
            "partitions/p/jobs/j",
            {**job_body(), "task": {**job_body()["task"], "taskApiVersion": 0}},
            "taskApiVersion must not be 0",
        ),
        (
            "partitions/p/jobs/j",
            {**job_body(), "task": {**job_body()["task"], "targetPipe": ""}},
            "task.targetPipe",
        ),
        ("partitions/p/jobs/j", {**job_body(), "delay": -1}, "delay"),
        ("partitions/p/jobs/j", job_body(target="local:nobody"), "nobody"),
        # What the job database cannot keep is refused on either database, never a 500.
        ("partitions/p/jobs/j%00", job_body(), "control character"),
        ("partitions/p/jobs/j", job_body(name="a\x00"), "name: Value error, must not contain"),
        ("partitions/p/jobs/j", job_body(labels={"team": "a\x00"}), "labels.team: Value error"),
        ("partitions/p/jobs/j", job_body(labels={"k" * 256: "v"}), "longer than 255"),
        ("partitions/p/jobs/j", job_body(labels={"team\n": "v"}), "label key 'team\\n'"),
        ("partitions/p/jobs/j", job_body(delay=2**31), "delay"),
        ("partitions/p/jobs/j", job_body(prerequisiteJobIds=["x" * 49]), "prerequisite job id"),
        ("partitions/p/jobs/j", job_body(prerequisiteJobIds=["a.b"]), "prerequisite job id"),
        # failureTolerance is a count or a percentage, as the OpenAPI document says.
        ("partitions/p/jobs/j", job_body(failureTolerance={"count": 1}), "neither a count"),
        ("partitions/p/jobs/j", job_body(failureTolerance=True), "neither a count"),
        ("partitions/p/jobs/j", job_body(failureTolerance=-1), "is negative"),
    ],
)
async def test_a_bad_job_is_a_400_saying_why(
    http: httpx.AsyncClient, path: str, payload: dict[str, Any], message: str
) -> None:
    response = await http.put(f"{API}/{path}", json=payload)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]


async def test_a_body_that_is_not_json_is_a_400(http: httpx.AsyncClient) -> None:
    response = await http.put(
        f"{API}/partitions/p/jobs/j",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


async def test_unknown_jobs_are_404_and_not_active(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{API}/partitions/p/jobs/nobody")
    assert response.status_code == 404
    assert "no job 'nobody'" in response.json()["message"]
    assert (await http.get(f"{API}/partitions/p/jobs/nobody/isActive")).json() is False
    assert (await http.delete(f"{API}/partitions/p/jobs/nobody")).status_code == 404


async def test_a_job_runs_to_completed_and_its_progress_moves(
    http: httpx.AsyncClient, worker: Worker, partition: str
) -> None:
    url = f"{API}/partitions/{partition}/jobs/run"
    payload = job_body(items=3000, target="local:sleep")
    payload["task"]["taskData"]["taskMessageParams"] = {"sleepMillis": "1"}
    assert (await http.put(url, json=payload)).status_code == 201
    seen: set[float] = set()

    async def completed() -> bool:
        job = (await http.get(url)).json()
        seen.add(job["percentageComplete"])
        return bool(job["status"] == "Completed")

    await eventually(completed, within=120, interval=0.1)
    job = (await http.get(url)).json()
    assert job["percentageComplete"] == 100
    assert job["counts"]["completed"] == 3000
    assert any(0 < percent < 100 for percent in seen), seen
    status = await http.get(f"{url}/status")
    assert status.json() == "Completed"
    assert "max-age=" in status.headers["Cache-Control"]
    assert (await http.get(f"{url}/isActive")).json() is False


async def test_pause_resume_cancel_follow_the_job_states(
    http: httpx.AsyncClient, worker: Worker, partition: str
) -> None:
    url = f"{API}/partitions/{partition}/jobs/ctl"
    payload = job_body(items=100_000, target="local:sleep")
    payload["task"]["taskData"]["taskMessageParams"] = {"sleepMillis": "1"}
    await http.put(url, json=payload)

    async def active() -> bool:
        return bool((await http.get(f"{url}/status")).json() == "Active")

    await eventually(active)
    # Resuming an Active job changes nothing, as the reference has it
    assert (await http.post(f"{url}/resume")).status_code == 204
    assert (await http.get(url)).json()["status"] == "Active"
    assert (await http.post(f"{url}/pause")).status_code == 204
    assert (await http.get(url)).json()["status"] == "Paused"
    assert (await http.post(f"{url}/resume")).status_code == 204
    assert (await http.post(f"{url}/cancel")).status_code == 204
    assert (await http.get(url)).json()["status"] == "Cancelled"
    assert (await http.post(f"{url}/cancel")).status_code == 204
    pause = await http.post(f"{url}/pause")
    assert pause.status_code == 400
    assert "is Cancelled" in pause.json()["message"]


async def test_list_sorts_filters_pages_and_counts(http: httpx.AsyncClient, partition: str) -> None:
    jobs = f"{API}/partitions/{partition}/jobs"
    for job_id, team in [("a-1", "red"), ("a-2", "blue"), ("b-1", "red"), ("c-1", None)]:
        labels = {"team": team} if team else {}
        assert (await http.put(f"{jobs}/{job_id}", json=job_body(labels=labels))).status_code == 201

    async def ids(**params: str) -> list[str]:
        response = await http.get(jobs, params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()]

    assert await ids(sort="id:asc") == ["a-1", "a-2", "b-1", "c-1"]
    assert await ids(sort="id:desc", limit="2", offset="1") == ["b-1", "a-2"]
    assert await ids(jobIdStartsWith="a-", sort="id:asc") == ["a-1", "a-2"]
    assert await ids(filter="labels.team==red", sort="id:asc") == ["a-1", "b-1"]
    assert await ids(filter="id=in=(a-2,c-1);status==Waiting", sort="id:asc") == ["a-2", "c-1"]
    assert await ids(labelExist="team", sort="labels.team:asc") == ["a-2", "a-1", "b-1"]
    assert await ids(statusType="Completed") == []
    count = await http.get(
        f"{API}/partitions/{partition}/jobStats/count", params={"filter": "id==a*"}
    )
    assert count.json() == 2
    # a count has no page: paging parameters are not its own
    every = await http.get(
        f"{API}/partitions/{partition}/jobStats/count",
        params={"statusType": "NotFinished", "limit": "5000"},
    )
    assert every.json() == 4

    for params, message in [
        ({"sort": "id"}, "needs a direction"),
        ({"sort": "colour:asc"}, "sort field 'colour' is unknown"),
        ({"filter": "colour==red"}, "unknown key 'colour'"),
        ({"offset": str(2**63)}, "offset 9223372036854775808 is over"),
        ({"filter": "name==a\x00"}, "filter must not contain the NUL character"),
        ({"jobIdStartsWith": "a\x00"}, "jobIdStartsWith must not contain the NUL character"),
    ]:
        response = await http.get(jobs, params=params)
        assert response.status_code == 400, params
        assert message in response.json()["message"]


async def test_bulk_cancel_and_delete_count_what_they_changed(
    http: httpx.AsyncClient, partition: str
) -> None:
    jobs = f"{API}/partitions/{partition}/jobs"
    for job_id in ("x-1", "x-2", "y-1"):
        await http.put(f"{jobs}/{job_id}", json=job_body())
    cancel = await http.post(f"{jobs}:cancel", params={"jobIdStartsWith": "x-"})
    assert cancel.json() == {"jobsCanceled": 2}
    again = await http.post(f"{jobs}:cancel", params={"jobIdStartsWith": "x-"})
    assert again.json() == {"jobsCanceled": 0}
    deleted = await http.post(f"{jobs}:delete", params={"filter": "status==Cancelled"})
    assert deleted.json() == {"jobsDeleted": 2}
    remaining = (await http.get(jobs)).json()
    assert [job["id"] for job in remaining] == ["y-1"]
    assert (await http.delete(f"{jobs}/y-1")).status_code == 204
    assert (await http.get(f"{jobs}/y-1")).status_code == 404


async def test_ping_and_health(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{API}/ping")).status_code == 200
    health = (await http.get(f"{API}/health")).json()
    assert health["temporal"] == "ok"
    assert health["database"] == "ok"
    assert "rabbitmq" in health


async def test_probes_and_metrics_are_served_at_the_root(
    http: httpx.AsyncClient, partition: str
) -> None:
    def submitted(text: str) -> float:
        return sample(text, "jobservice_jobs_submitted_total", batch_type="range") or 0

    before = submitted(await scrape(http, ""))
    job_id = unique("counted")
    url = f"{API}/partitions/{partition}/jobs/{job_id}"
    assert (await http.put(url, json=job_body())).status_code == 201
    assert (await http.put(url, json=job_body())).status_code == 204  # the same job again

    metrics = await http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert submitted(metrics.text) == before + 1
    assert job_id not in metrics.text and partition not in metrics.text
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


async def test_an_undeclared_method_is_a_405_naming_every_method_of_the_path(
    http: httpx.AsyncClient,
) -> None:
    response = await http.request("TRACE", f"{API}/partitions/p/jobs/j")
    assert response.status_code == 405
    assert response.json() == {"message": "Method Not Allowed"}
    assert response.headers["Allow"] == "DELETE, GET, PATCH, PUT"


async def test_a_job_database_that_cannot_be_reached_is_a_503(
    client: Client, settings: Settings
) -> None:
    # Given a service whose job database is at a port nothing listens on
    store = JobStore(create_database_engine("postgresql+psycopg://jobservice@127.0.0.1:1/none"))
    service = JobService(client, store=store, settings=settings)
    async with api_client(create_app(service)) as http:
        for method, path in [("GET", "jobs/j"), ("GET", "jobs"), ("GET", "jobs/j/isActive")]:
            response = await http.request(method, f"{API}/partitions/p/{path}")
            assert response.status_code == 503, response.text
            assert "job database cannot be reached" in response.json()["message"]
        health = await http.get(f"{API}/health")
        assert health.status_code == 503
        assert health.json()["database"].startswith("unavailable")
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("the job database is unavailable: ")
        assert (await http.get("/healthz")).status_code == 200
    store.engine.dispose()
