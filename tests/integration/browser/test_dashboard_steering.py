"""Steering a job from its dashboard page: the limits in force and the rate beside them, and a
form that changes them while the job runs."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from jobservice.service.job_service import JobService
from tests.integration.browser.support import screenshot
from tests.integration.support import eventually, job

pytestmark = pytest.mark.usefixtures("worker")


async def test_a_running_job_is_tuned_from_its_page(
    page: Page, offsite: list[str], api_url: str, service: JobService, partition: str
) -> None:
    # Given a job running at 200 items a second
    await service.submit(
        "steered", job("range", "0-100000/1000", "local:noop", rate_limit=200), partition=partition
    )

    async def running() -> bool:
        return (await service.get("steered", partition=partition)).counts.completed > 400

    await eventually(running, within=60)

    # When its page is opened, it shows its limit and the rate it goes at
    await page.goto(f"{api_url}/dashboard/partitions/{partition}/jobs/steered")
    summary = page.locator("#job-summary")
    await expect(summary.locator(".limit dd")).to_have_text("200 items/s")
    await expect(summary.locator(".now dd")).to_contain_text("items/s")

    # And its rate limit and priority are changed in the form and applied
    steering = page.locator("#job-steering")
    await steering.get_by_label("Rate limit").fill("600")
    await steering.get_by_label("Priority").select_option("1")
    await steering.get_by_role("button", name="Apply").click()

    # Then the page says so, and the job runs under the new steering
    await expect(page.locator(".note")).to_contain_text("Job tuned")
    await expect(summary.locator(".limit dd")).to_have_text("600 items/s")
    tuned = await service.get("steered", partition=partition)
    assert (tuned.rate_limit, tuned.priority) == (600, 1)
    await screenshot(page, "job-steered")

    # And a value the job cannot take is refused with the reason
    await steering.get_by_label("Rate limit").fill("-3")
    await steering.get_by_role("button", name="Apply").click()
    await expect(page.locator("body")).to_contain_text("is not a rate")
    assert (await service.get("steered", partition=partition)).rate_limit == 600
    await service.cancel("steered", partition=partition)
    assert offsite == []
