"""The dashboard's pages and parts, rendered by the API over a real service."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence

import httpx
import pytest

from jobservice.db.query import JobQuery
from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from jobservice.web.app import create_app
from jobservice.web.dashboard import pages
from tests.conftest import unique
from tests.integration.browser.support import serve
from tests.integration.support import api_client, job
from tests.integration.test_batch_tree import frozen_tree

pytestmark = pytest.mark.usefixtures("worker")
HTML = {"Accept": "text/html"}


async def test_the_list_shows_jobs_newest_first_with_counters_and_filters(
    http: httpx.AsyncClient, service: JobService, partition: str
) -> None:
    # Given a finished job and a newer one under a label
    await service.submit("older", job("range", "0-5"), partition=partition)
    await service.wait("older", partition=partition)
    labelled = job("range", "0-5", labels={"team": "red"})
    await service.submit("newer", labelled, partition=partition)
    await service.wait("newer", partition=partition)

    # When the list of the partition is asked for
    answer = await http.get("/dashboard", params={"partition": partition}, headers=HTML)

    # Then both are there, newest first, with their status words, counts and the counters
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert page.index(f'id="job-row-{partition}/newer"') < page.index(
        f'id="job-row-{partition}/older"'
    )
    assert "2 jobs match" in page
    assert 'data-status="Completed"' in page and "5 / 5" in page
    assert 'id="job-counters"' in page
    # and a label filter narrows it to one
    narrowed = await http.get("/dashboard", params={"partition": partition, "label": "team=red"})
    assert "1 job matches" in narrowed.text and f"{partition}/older" not in narrowed.text
    # and a filter that cannot be read is a page that says why, not a blank one
    bad = await http.get("/dashboard", params={"filter": "status=="}, headers=HTML)
    assert bad.status_code == 400 and "filter" in bad.text


async def test_the_job_page_of_a_failed_job_shows_its_failures_and_definition(
    http: httpx.AsyncClient, service: JobService, partition: str
) -> None:
    failing = job("range", "0-6", target_pipe="local:fail-odd")
    await service.submit("broken", failing, partition=partition)
    finished = await service.wait("broken", partition=partition)
    assert finished.counts.failed >= 1

    answer = await http.get(f"/dashboard/partitions/{partition}/jobs/broken", headers=HTML)

    assert answer.status_code == 200, answer.text
    assert finished.failures[0].failure_id in answer.text
    assert "&#34;batchDefinition&#34;: &#34;0-6&#34;" in answer.text
    # A finished job's buttons do nothing, and say so
    assert re.search(r'<button class="pause" disabled>', answer.text)


async def test_bulk_cancel_says_how_many_first_then_what_it_did(
    http: httpx.AsyncClient, service: JobService, partition: str
) -> None:
    slow = job(
        "range", "0-100000", target_pipe="local:sleep", task_message_params={"sleepMillis": "50"}
    )
    for n in range(3):
        await service.submit(
            f"slow{n}", slow.model_copy(update={"labels": {"batch": "b"}}), partition=partition
        )
    await service.submit("done", job("range", "0-3", labels={"batch": "b"}), partition=partition)
    await service.wait("done", partition=partition)

    preview = await http.get(
        "/dashboard/bulk", params={"action": "cancel", "partition": partition, "label": "batch"}
    )
    assert preview.status_code == 200, preview.text
    assert 'id="bulk-count">4<' in preview.text

    done = await http.post(
        "/dashboard/bulk", data={"action": "cancel", "partition": partition, "label": "batch"}
    )
    assert done.status_code == 200, done.text
    assert "3 cancelled, 1 already finished" in done.text
    for n in range(3):
        assert (await service.get(f"slow{n}", partition=partition)).status is JobStatus.CANCELLED


async def test_a_job_page_streams_its_progress(service: JobService, partition: str) -> None:
    slow = job(
        "range", "0-20000", target_pipe="local:sleep", task_message_params={"sleepMillis": "20"}
    )
    await service.submit("moving", slow, partition=partition)

    seen: list[int] = []
    url = f"/dashboard/partitions/{partition}/jobs/moving/events"
    async with (
        serve(create_app(service)) as root,
        httpx.AsyncClient(base_url=root, timeout=30) as http,
        http.stream("GET", url) as events,
    ):
        assert events.headers["content-type"].startswith("text/event-stream")
        async for line in events.aiter_lines():
            if line.startswith("data: ") and "job-summary" in line:
                summary = json.loads(line[6:])["job-summary"]
                seen.append(int(re.search(r'data-completed="(\d+)"', summary).group(1)))  # type: ignore[union-attr]
            if len(set(seen)) >= 3:
                break
    assert seen == sorted(seen) and len(set(seen)) >= 3
    await service.cancel("moving", partition=partition)


async def test_with_keys_the_dashboard_asks_for_one_and_shows_only_its_partitions(
    service: JobService, settings: Settings, partition: str
) -> None:
    other = unique("q")
    slow = job(
        "range", "0-100000", target_pipe="local:sleep", task_message_params={"sleepMillis": "50"}
    )
    await service.submit("mine", slow, partition=partition)
    await service.submit("theirs", slow, partition=other)
    keyed = settings.model_copy(
        update={"api": settings.api.model_copy(update={"keys": {"key-a": [partition]}})}
    )
    app = create_app(JobService(service.client, store=service.store, settings=keyed))
    async with api_client(app) as browser:
        asked = await browser.get("/dashboard?status=Active", headers=HTML)
        assert asked.status_code == 303
        assert asked.headers["location"] == "/dashboard/login?next=/dashboard%3Fstatus%3DActive"
        wrong = await browser.post("/dashboard/login", data={"key": "nope", "next": "/dashboard"})
        assert wrong.status_code == 401 and "not known" in wrong.text
        signed = await browser.post("/dashboard/login", data={"key": "key-a", "next": "/dashboard"})
        assert signed.status_code == 303
        listed = await browser.get("/dashboard", headers=HTML)
        assert "mine" in listed.text and "theirs" not in listed.text and other not in listed.text
        # Nothing of the other partition can be read, streamed, browsed or made
        refused = [
            await browser.get(f"/dashboard/partitions/{other}/jobs/theirs", headers=HTML),
            await browser.get(f"/dashboard/partitions/{other}/jobs/theirs/batches"),
            await browser.get(f"/dashboard/partitions/{other}/jobs/theirs/events"),
            await browser.get("/dashboard/events/jobs", params={"key": f"{other}/theirs"}),
            await browser.post(f"/dashboard/partitions/{other}/jobs/theirs/cancel"),
            await browser.post(
                "/dashboard/submit",
                data={
                    "jobId": "x",
                    "partition": other,
                    "batchType": "range",
                    "batchDefinition": "0-1",
                    "targetPipe": "local:noop",
                },
            ),
        ]
        assert [answer.status_code for answer in refused] == [403] * len(refused)
        # and a bulk cancel of everything is a cancel of everything the key opens
        done = await browser.post("/dashboard/bulk", data={"action": "cancel"})
        assert "1 cancelled" in done.text, done.text
    assert (await service.get("mine", partition=partition)).status is JobStatus.CANCELLED
    assert (await service.get("theirs", partition=other)).status is JobStatus.ACTIVE
    await service.cancel("theirs", partition=other)


async def test_a_form_posted_from_another_site_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, service: JobService, partition: str
) -> None:
    await service.submit("kept", job("range", "0-3"), partition=partition)
    await service.wait("kept", partition=partition)
    form = {"action": "delete", "partition": partition}

    for headers in ({"Origin": "http://elsewhere.example"}, {"Sec-Fetch-Site": "cross-site"}):
        answer = await http.post("/dashboard/bulk", data=form, headers=headers)
        assert answer.status_code == 403, answer.text
        assert "another site" in answer.text
    assert (await service.get("kept", partition=partition)).status is JobStatus.COMPLETED
    # The dashboard's own pages post as the same origin: as the browser says, or by the
    # Origin alone (plain http to a name), also behind a proxy that rewrites Host
    for same in (
        {"Origin": "http://api", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://api:80"},
        {"Origin": "https://jobs.example", "Host": "api:8080", "X-Forwarded-Host": "jobs.example"},
    ):
        answer = await http.post("/dashboard/bulk", data=form, headers=same)
        assert answer.status_code == 200, (same, answer.text)


async def test_a_filter_or_label_cannot_undo_the_status_beside_it(
    http: httpx.AsyncClient, partition: str
) -> None:
    # A filter box that closes its parenthesis, or a label key that is no key, is refused
    for name, text in (("filter", "id==zzz),(id==*"), ("label", "a<0,id=*")):
        params = {"action": "delete", "partition": partition, "status": "Completed", name: text}
        answer = await http.get("/dashboard/bulk", params=params)
        assert answer.status_code == 400 and name in answer.text, (name, answer.text)


async def test_a_stream_of_jobs_with_impossible_ids_is_refused(http: httpx.AsyncClient) -> None:
    for key in ("default/", "default/a:b", "nopartition"):
        answer = await http.get("/dashboard/events/jobs", params={"key": key})
        assert answer.status_code == 400, (key, answer.text)


class _CountingService(JobService):
    """The service, counting its reads of jobs by id: what the feed costs the database."""

    reads = 0

    async def get_many(self, job_ids: Sequence[str], *, partition: str) -> list[JobView]:
        self.reads += 1
        return await super().get_many(job_ids, partition=partition)

    async def find(self, query: JobQuery) -> list[JobView]:
        self.reads += 1
        return await super().find(query)


async def test_lists_refreshing_together_read_their_page_once(
    service: JobService, settings: Settings, partition: str
) -> None:
    await service.submit("listed", job("range", "0-2"), partition=partition)
    counting = _CountingService(service.client, store=service.store, settings=settings)
    async with api_client(create_app(counting)) as client:
        pages = await asyncio.gather(
            *(client.get("/dashboard/jobs", params={"partition": partition}) for _ in range(20))
        )
    assert all(f'id="job-row-{partition}/listed"' in page.text for page in pages)
    assert counting.reads == 1


async def test_many_open_pages_of_a_job_cost_one_read_a_second(
    service: JobService, settings: Settings, partition: str
) -> None:
    slow = job(
        "range", "0-4000", target_pipe="local:sleep", task_message_params={"sleepMillis": "20"}
    )
    await service.submit("watched", slow, partition=partition)
    counting = _CountingService(service.client, store=service.store, settings=settings)
    app = create_app(counting)
    url = f"/dashboard/partitions/{partition}/jobs/watched/events"

    async def one_page(client: httpx.AsyncClient) -> int:
        updates = 0
        async with client.stream("GET", url) as events:
            async for line in events.aiter_lines():
                updates += line.startswith("event: parts")
                if updates == 4:
                    return updates
        return updates

    # A real server: the in-process test client would hand over a stream only once it ends
    async with serve(app) as root, httpx.AsyncClient(base_url=root, timeout=30) as client:
        started = asyncio.get_running_loop().time()
        updates = await asyncio.gather(*(one_page(client) for _ in range(30)))
        seconds = asyncio.get_running_loop().time() - started

    # Thirty pages each saw four updates, and the job was read about once a second for all
    assert updates == [4] * 30
    assert counting.reads <= seconds + 2, (counting.reads, seconds)
    await service.cancel("watched", partition=partition)


async def test_the_batch_tree_shows_a_level_at_a_time_with_each_batchs_progress(
    http: httpx.AsyncClient, service: JobService, partition: str
) -> None:
    job_id = await frozen_tree(service, partition)
    base = f"/dashboard/partitions/{partition}/jobs/{job_id}/batches"

    root = await http.get(base)

    assert root.status_code == 200, root.text
    assert "3 running · " in root.text
    children = re.findall(r'data-src="[^"]*\?path=(\d+)"', root.text)
    assert len(children) == 3
    # A child opens to its own leaves, each with its progress
    level = await http.get(base, params={"path": children[0]})
    assert level.status_code == 200, level.text
    leaves = re.findall(rf'id="batch-{children[0]}\.(\d+)"', level.text)
    assert leaves and " / 1,000 done" in level.text
    # A finished job's tree says its counts are final
    await service.cancel(job_id, partition=partition)
    ended = await http.get(base)
    assert "every batch has ended" in ended.text


async def test_with_the_temporal_ui_known_a_job_and_its_batches_link_to_their_workflows(
    service: JobService, settings: Settings, partition: str
) -> None:
    await service.submit("linked", job("range", "0-3"), partition=partition)
    await service.wait("linked", partition=partition)
    ui = "http://127.0.0.1:8233"
    temporal = settings.temporal.model_copy(update={"ui_url": ui})
    app = create_app(
        JobService(
            service.client,
            store=service.store,
            settings=settings.model_copy(update={"temporal": temporal}),
        )
    )
    async with api_client(app) as client:
        answer = await client.get(f"/dashboard/partitions/{partition}/jobs/linked")
    workflows = f"{ui}/namespaces/{settings.temporal.namespace}/workflows"
    assert f'href="{workflows}/job%2F{partition}%2Flinked"' in answer.text
    assert f'href="{workflows}"' in answer.text  # and the top bar, to all of them


async def test_a_long_bulk_action_goes_on_after_its_request_and_shows_its_progress(
    http: httpx.AsyncClient, service: JobService, partition: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = job(
        "range", "0-100000", target_pipe="local:sleep", task_message_params={"sleepMillis": "50"}
    )
    for n in range(30):
        await service.submit(f"many{n}", slow, partition=partition)
    monkeypatch.setattr(pages, "WAIT_SECONDS", 0.0)  # as if the action took minutes

    form = {"action": "cancel", "partition": partition}
    started = await http.post("/dashboard/bulk", data=form)

    assert started.status_code == 303, started.text
    run_url = started.headers["location"]
    # the same form sent again follows the same run, rather than starting a second
    assert (await http.post("/dashboard/bulk", data=form)).headers["location"] == run_url
    assert run_url.startswith("/dashboard/bulk/runs/")
    seen = []
    while "Done" not in (answer := await http.get(run_url)).text:
        assert answer.status_code == 200, answer.text
        seen.append(answer.text)
        await asyncio.sleep(0.1)
    assert 'id="bulk-report">30 cancelled.' in answer.text
    assert seen and 'http-equiv="refresh"' in seen[0]  # the page follows it meanwhile
    for n in range(30):
        assert (await service.get(f"many{n}", partition=partition)).status is JobStatus.CANCELLED
    # An unknown run is a 404
    assert (await http.get("/dashboard/bulk/runs/nonesuch")).status_code == 404


async def test_a_page_past_the_end_shows_the_last_one(
    http: httpx.AsyncClient, service: JobService, partition: str
) -> None:
    await service.submit("only", job("range", "0-2"), partition=partition)
    answer = await http.get("/dashboard", params={"partition": partition, "page": "9"})
    assert answer.status_code == 200 and f'id="job-row-{partition}/only"' in answer.text
