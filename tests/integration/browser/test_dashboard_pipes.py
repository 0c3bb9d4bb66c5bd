"""The dashboard's Pipes page: each pipe's limit, its rate lately and its jobs, and a form
that limits a pipe while its jobs run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from jobservice.service.job_service import JobService
from tests.conftest import unique
from tests.integration.browser.support import screenshot
from tests.integration.support import eventually, job

pytestmark = pytest.mark.usefixtures("worker")
PIPE = "local:noop"


@pytest.fixture
async def pipe(service: JobService) -> AsyncIterator[str]:
    """The pipe the test limits; the job database is the session's: its limit goes after."""
    yield PIPE
    await service.limit_pipe(PIPE, None)


async def test_a_pipe_is_limited_from_the_pipes_page(
    page: Page, offsite: list[str], api_url: str, service: JobService, partition: str, pipe: str
) -> None:
    # Given a job sending to a pipe, going at 300 items a second of its own
    job_id = unique("piped")
    await service.submit(
        job_id, job("range", "0-100000/1000", pipe, rate_limit=300), partition=partition
    )

    async def measured() -> bool:
        return ((await service.pipe(pipe)).recent_items_per_second or 0) > 100

    await eventually(measured, within=60)

    # When the Pipes page is opened, the pipe is there with its rate and no limit
    await page.goto(f"{api_url}/dashboard")
    await page.get_by_role("link", name="Pipes").click()
    row = page.locator(f'tr[data-pipe="{pipe}"]')
    await expect(row.locator(".limit")).to_have_text("none")
    await expect(row.locator(".now")).to_contain_text("/s")

    # And it is limited to 100 items a second from its row
    await row.get_by_label(f"Limit of {pipe}").fill("100")
    await row.get_by_role("button", name="Apply").click()

    # Then the page says so, and the limit is kept and in force
    await expect(page.locator("#pipe-done")).to_contain_text(pipe)
    await expect(page.locator(f'tr[data-pipe="{pipe}"] .limit')).to_have_text("100/s")
    assert (await service.pipe(pipe)).rate_limit == 100
    await screenshot(page, "pipes-limited")

    # And a limit that is not a rate is refused with the reason
    await page.goto(f"{api_url}/dashboard/pipes")
    form = page.locator("#limit-pipe")
    await form.get_by_label("Pipe").fill(pipe)
    await form.get_by_label("Limit").fill("-4")
    await form.get_by_role("button", name="Limit it").click()
    await expect(page.locator("body")).to_contain_text("is not a rate")
    assert (await service.pipe(pipe)).rate_limit == 100
    await service.cancel(job_id, partition=partition)
    assert offsite == []
