"""The dashboard in a real headless Chromium: what a user sees move, and what their clicks do."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Dialog, Page, expect

from jobservice.jobs.definition import JobDefinition
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from jobservice.web.app import create_app
from tests.conftest import unique
from tests.integration.browser.support import screenshot, serve
from tests.integration.handlers import FailMarkedHandler
from tests.integration.support import eventually, job

pytestmark = pytest.mark.usefixtures("worker")

SLOW = {"sleepMillis": "20"}


def _slow(items: int, **fields: Any) -> JobDefinition:
    return job("range", f"0-{items}", target_pipe="local:sleep", task_message_params=SLOW, **fields)


async def _completed(page: Page, selector: str) -> int:
    return int(await page.locator(selector).first.get_attribute("data-completed") or "0")


async def _still(page: Page, selector: str, *, within: float = 30.0) -> int:
    """The completed count ``selector`` shows once it has not moved for two seconds."""
    deadline = asyncio.get_running_loop().time() + within
    last, since = await _completed(page, selector), asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - since < 2:
        assert asyncio.get_running_loop().time() < deadline, "the bar did not stop"
        await asyncio.sleep(0.25)
        now = await _completed(page, selector)
        if now != last:
            last, since = now, asyncio.get_running_loop().time()
    return last


def _lightness(css_colour: str) -> float:
    """0 for black to 1 for white, from a computed ``rgb(r, g, b)``."""
    red, green, blue = (int(part) for part in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def _accept_dialogs(page: Page) -> None:
    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)


async def test_the_list_shows_a_running_job_whose_bar_moves(
    page: Page, offsite: list[str], api_url: str, service: JobService, partition: str
) -> None:
    await service.submit("moving", _slow(20_000), partition=partition)
    await page.goto(f"{api_url}/dashboard?partition={partition}")
    row = f'[id="job-row-{partition}/moving"]'
    await expect(page.locator(row).locator(".badge")).to_have_text("▶ Active", timeout=20_000)
    await page.evaluate("window.loadedOnce = true")  # a reload would lose it

    # The row changes without a reload: its completed count and its bar grow
    first = await _completed(page, row)
    width = await page.locator(f"{row} .bar .done").get_attribute("style")
    await page.wait_for_function(
        f"document.querySelector('{row}').dataset.completed > {first + 200}", timeout=20_000
    )
    assert await page.locator(f"{row} .bar .done").get_attribute("style") != width
    assert await page.evaluate("window.loadedOnce === true")
    await expect(page.locator("#job-counters")).to_contain_text("Active")
    # and a job submitted meanwhile joins the list, still without a reload
    await service.submit("newcomer", job("range", "0-10"), partition=partition)
    await expect(page.locator(f'[id="job-row-{partition}/newcomer"]')).to_be_visible()
    assert await page.evaluate("window.loadedOnce === true")
    await screenshot(page, "dashboard-list-running")
    assert offsite == []
    await service.cancel("moving", partition=partition)


async def test_pause_stops_the_bar_and_resume_starts_it_again(
    page: Page, offsite: list[str], api_url: str, service: JobService, partition: str
) -> None:
    await service.submit("steered", _slow(20_000), partition=partition)
    await page.goto(f"{api_url}/dashboard/partitions/{partition}/jobs/steered")
    summary = "#job-summary"
    await page.wait_for_function(
        "document.querySelector('#job-summary').dataset.completed > 100", timeout=20_000
    )
    await expect(page.locator("#job-controls button.resume")).to_be_disabled()

    # When Pause is clicked
    await page.locator("#job-controls button.pause").click()

    # Then the job is Paused, the buttons say what can be done now, and the bar stops
    await expect(page.locator(f"{summary} .badge")).to_have_text("❚❚ Paused")
    await expect(page.locator("[role=status]")).to_have_text("Job paused.")
    await expect(page.locator("#job-controls button.pause")).to_be_disabled()
    assert (await service.get("steered", partition=partition)).status is JobStatus.PAUSED
    # Chunks in flight stop after the slice they are in: then the bar holds still, at the
    # count the job's row holds
    stopped = await _still(page, summary)
    assert stopped == (await service.get("steered", partition=partition)).counts.completed
    await asyncio.sleep(3)
    assert await _completed(page, summary) == stopped
    await screenshot(page, "dashboard-job-paused")

    # And Resume starts it moving again
    await page.locator("#job-controls button.resume").click()
    await expect(page.locator(f"{summary} .badge")).to_have_text("▶ Active")
    await page.wait_for_function(
        f"document.querySelector('#job-summary').dataset.completed > {stopped + 100}",
        timeout=20_000,
    )
    await screenshot(page, "dashboard-job-running")

    # And Cancel asks first, then cancels
    _accept_dialogs(page)
    await page.locator("#job-controls button.cancel").click()
    await expect(page.locator(f"{summary} .badge")).to_have_text("■ Cancelled")
    assert (await service.get("steered", partition=partition)).status is JobStatus.CANCELLED
    assert offsite == []


async def test_a_bulk_cancel_by_label_says_its_count_then_what_it_did(
    page: Page, offsite: list[str], api_url: str, service: JobService, partition: str
) -> None:
    for n in range(3):
        slow = _slow(20_000, labels={"run": "nightly"})
        await service.submit(f"night{n}", slow, partition=partition)
    await service.submit(
        "early", job("range", "0-3", labels={"run": "nightly"}), partition=partition
    )
    await service.submit("other", _slow(20_000), partition=partition)
    await service.wait("early", partition=partition)

    await page.goto(f"{api_url}/dashboard?partition={partition}")
    await page.locator("input[name=label]").fill("run=nightly")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator(".matching")).to_have_text("4 jobs match")
    await page.get_by_role("button", name="Cancel all…").click()

    await expect(page.locator("#bulk-count")).to_have_text("4")
    await expect(page.locator("h1")).to_have_text("Cancel 4 jobs?")
    await screenshot(page, "dashboard-bulk-preview")
    await page.get_by_role("button", name="Cancel 4 jobs").click()

    await expect(page.locator("#bulk-report")).to_have_text("3 cancelled, 1 already finished.")
    await screenshot(page, "dashboard-bulk-done")
    for n in range(3):
        assert (await service.get(f"night{n}", partition=partition)).status is JobStatus.CANCELLED
    assert (await service.get("other", partition=partition)).status is JobStatus.ACTIVE
    assert offsite == []
    await service.cancel("other", partition=partition)


async def test_the_page_of_a_failed_job_shows_its_failures(
    page: Page, offsite: list[str], api_url: str, service: JobService, partition: str
) -> None:
    await service.submit(
        "broken", job("range", "0-10", target_pipe="local:fail-odd"), partition=partition
    )
    failed = await service.wait("broken", partition=partition)
    assert failed.status is JobStatus.FAILED and failed.failures

    await page.goto(f"{api_url}/dashboard/partitions/{partition}/jobs/broken")

    await expect(page.locator("#job-summary .badge")).to_have_text("✕ Failed")
    rows = page.locator("#job-failures tbody tr")
    await expect(rows).to_have_count(len(failed.failures))
    first = failed.failures[0]
    await expect(rows.first).to_contain_text(first.failure_id)
    await expect(rows.first).to_contain_text(first.failure_message)
    for verb in ("pause", "resume", "cancel"):
        await expect(page.locator(f"#job-controls button.{verb}")).to_be_disabled()
    await screenshot(page, "dashboard-job-failed")
    assert offsite == []


async def test_a_key_for_one_partition_sees_nothing_of_another(
    page: Page, offsite: list[str], service: JobService, settings: Settings, partition: str
) -> None:
    other = unique("b")
    await service.submit("ours", job("range", "0-3"), partition=partition)
    await service.submit("theirs", job("range", "0-3"), partition=other)
    keys = {"key-of-a": [partition], "key-of-b": [other]}
    keyed = settings.model_copy(update={"api": settings.api.model_copy(update={"keys": keys})})
    app = create_app(JobService(service.client, store=service.store, settings=keyed))
    async with serve(app) as url:
        await page.goto(f"{url}/dashboard")
        await expect(page.locator("h1")).to_have_text("Sign in with an API key")
        await page.locator("input[name=key]").fill("key-of-a")
        await page.get_by_role("button", name="Sign in").click()

        await expect(page.locator(f'[id="job-row-{partition}/ours"]')).to_be_visible()
        assert await page.locator(f'[id="job-row-{other}/theirs"]').count() == 0
        assert other not in await page.content()
        await expect(page.locator("#job-counters")).to_contain_text("1 job")
        await screenshot(page, "dashboard-partition-a")

        await page.goto(f"{url}/dashboard/partitions/{other}/jobs/theirs")
        await expect(page.locator("h1")).to_have_text("Not your partition")
        await screenshot(page, "dashboard-partition-b-refused")
    assert offsite == []


async def test_a_job_submitted_from_the_form_shows_its_batch_tree(
    page: Page, offsite: list[str], api_url: str, service: JobService, partition: str
) -> None:
    await page.goto(f"{api_url}/dashboard/submit")
    batch = page.get_by_role("form", name="Submit a batch")
    await batch.locator("input[name=jobId]").fill("from-the-form")
    await batch.locator("input[name=partition]").fill(partition)
    await batch.locator("select[name=batchType]").select_option("range")
    await batch.locator("textarea[name=batchDefinition]").fill("0-30000/1000")
    await batch.locator("input[name=targetPipe]").fill("local:sleep")
    await batch.locator("textarea[name=taskMessageParams]").fill("sleepMillis=10")
    await screenshot(page, "dashboard-submit")
    await batch.get_by_role("button", name="Submit").click()

    # The job's page, with its tree: batches below the root, each opening to its own
    await expect(page.locator("h1")).to_have_text("from-the-form")
    await expect(page.locator(".tree details.batch").first).to_be_visible(timeout=20_000)
    first = page.locator(".tree details.batch").first
    await first.locator("summary").click()
    await expect(first.locator(".children details.batch").first).to_be_visible(timeout=20_000)
    await screenshot(page, "dashboard-job-tree")

    # On a phone-sized screen in the dark, the same page still reads: nothing wider than the
    # phone, light text on a dark page
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.emulate_media(color_scheme="dark")
    await expect(page.locator("#job-summary .badge")).to_have_text("▶ Active")
    await screenshot(page, "dashboard-job-phone-dark")
    wide, viewport = await page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert viewport == 390
    assert wide <= viewport, f"the page is {wide} px wide on a {viewport} px phone"
    background, text = await page.evaluate(
        "[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]"
    )
    assert _lightness(background) < 0.2, f"the page is {background}"
    assert _lightness(text) > 0.8, f"its text is {text}"
    assert offsite == []
    await service.cancel("from-the-form", partition=partition)


async def test_the_job_page_pages_through_every_failed_item(
    page: Page, offsite: list[str], api_url: str, service: JobService, partition: str
) -> None:
    # Given a finished job with 120 failed items
    failing = job("range", "0-240/100", "local:fail-odd", failure_tolerance="100%")
    await service.submit("failing", failing, partition=partition)
    await service.wait("failing", partition=partition)

    await page.goto(f"{api_url}/dashboard/partitions/{partition}/jobs/failing")

    # Then the page says how many there are, and shows the first 50
    ledger = page.locator(".ledger")
    await expect(ledger.locator(".ledger-range")).to_contain_text("120 failed items; 1 to 50")
    await expect(ledger.locator("tbody tr")).to_have_count(50)
    first = await ledger.locator("tbody tr td.id").first.text_content()
    # and turns to the next pages and back, without leaving the job's page
    await ledger.get_by_text("next 50").click()
    await expect(ledger.locator(".ledger-range")).to_contain_text("51 to 100")
    await ledger.get_by_text("next 50").click()
    await expect(ledger.locator(".ledger-range")).to_contain_text("101 to 120")
    await expect(ledger.locator("tbody tr")).to_have_count(20)
    await expect(ledger.get_by_text("next 50")).to_have_count(0)
    await screenshot(page, "job-failed-items")
    await ledger.get_by_text("previous 50").click()
    await ledger.get_by_text("previous 50").click()
    await expect(ledger.locator("tbody tr td.id").first).to_have_text(first or "")
    assert page.url.endswith("/jobs/failing")
    assert offsite == []


async def test_retry_failed_items_redrives_a_finished_job(
    page: Page,
    offsite: list[str],
    api_url: str,
    service: JobService,
    partition: str,
    marked_handler: FailMarkedHandler,
) -> None:
    # Given a finished job with 25 failed items, whose cause is then gone
    marked_handler.marked = set(range(0, 100, 4))
    failing = job("range", "0-100", "local:fail-marked", failure_tolerance="100%")
    await service.submit("retried", failing, partition=partition)
    await service.wait("retried", partition=partition)
    marked_handler.marked = set()
    _accept_dialogs(page)

    await page.goto(f"{api_url}/dashboard/partitions/{partition}/jobs/retried")
    button = page.get_by_role("button", name="Retry failed items")
    await expect(button).to_be_enabled()
    await button.click()

    # Then the job runs its failed items again, and the page shows it done, redriven once
    await expect(page.locator(".note")).to_contain_text("Job redriven")
    summary = page.locator("#job-summary")
    await expect(summary).to_have_attribute("data-status", "Completed", timeout=30_000)
    await expect(summary).to_have_attribute("data-completed", "100")
    await expect(page.locator("#job-controls")).to_contain_text("redriven 1 time")
    await expect(page.get_by_role("button", name="Retry failed items")).to_be_disabled()
    await page.get_by_role("button", name="refresh").first.click()
    await expect(page.locator(".ledger")).to_contain_text("No failed items")
    await screenshot(page, "job-redriven")
    job_now = await service.get("retried", partition=partition)
    assert (job_now.counts.completed, job_now.counts.failed, job_now.redrive_count) == (100, 0, 1)
    assert offsite == []


async def test_retry_carries_a_cancelled_job_on_from_where_it_stopped(
    page: Page,
    offsite: list[str],
    api_url: str,
    service: JobService,
    partition: str,
    marked_handler: FailMarkedHandler,
) -> None:
    # Given a job cancelled before it reached all its 2,000 items
    marked_handler.marked = set()
    slow = job("range", "0-2000/200", "local:fail-marked", task_message_params={"sleepMillis": "3"})
    await service.submit("stopped-short", slow, partition=partition)

    async def under_way() -> bool:
        return len(marked_handler.seen) >= 300

    await eventually(under_way, within=60)
    await service.cancel("stopped-short", partition=partition)
    stood = await service.wait("stopped-short", partition=partition)
    assert stood.counts.completed < 2000
    _accept_dialogs(page)

    # When its page is opened, the retry button says it carries the job on, and is pressed
    await page.goto(f"{api_url}/dashboard/partitions/{partition}/jobs/stopped-short")
    button = page.get_by_role("button", name="Retry failed items")
    await expect(button).to_be_enabled()
    await expect(button).to_have_attribute("title", re.compile("items it never reached"))
    await button.click()

    # Then the job carries on and ends with every item completed
    await expect(page.locator(".note")).to_contain_text("Job redriven")
    summary = page.locator("#job-summary")
    await expect(summary).to_have_attribute("data-status", "Completed", timeout=60_000)
    await expect(summary).to_have_attribute("data-completed", "2000")
    await screenshot(page, "job-carried-on")
    done = await service.get("stopped-short", partition=partition)
    assert (done.counts.completed, done.counts.total, done.redrive_count) == (2000, 2000, 1)
    assert offsite == []
