"""Browser fixtures: the machine's Chromium, headless, and pages that cannot leave it.

- ``browser`` (session): Debian's Chromium at ``/usr/bin/chromium``, driven by Playwright's
  async API on the session's loop. Playwright's own browser downloads are not used; a machine
  without ``/usr/bin/chromium`` fails the tests, saying to ``apt-get install -y chromium``
  (``make test`` and ``make integration`` install it).
- ``page``: a page of a fresh browser context (no cookies or storage of another test), 1280
  by 900. Every request it makes to anything but ``127.0.0.1``, ``localhost`` or a ``data:``
  URL is aborted, and its URL recorded in ``offsite``.
- ``offsite``: the URLs the test's ``page`` tried to reach off this machine. A page must work
  offline, so a test asserts ``offsite == []`` after it has looked at the page.
- ``api_url``: the root URL (``http://127.0.0.1:PORT``) of a real HTTP server of the REST
  API over the test's ``service``; the docs page is at ``/job-service-ui``, the endpoints
  under ``/job-service/v1``.

``tests.integration.browser.support`` has ``serve(app)``, to serve another app the same way,
and ``screenshot(page, name)``, which every browser test calls once the page shows what it
checks: ``build/screenshots/<name>.png`` is what a user would have seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from jobservice.service.job_service import JobService
from jobservice.web.app import create_app
from tests.integration.browser.support import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Chromium's own calls home would be noise at best, and offline a wait
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or a failure that says how to install it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests drive Debian's Chromium at {CHROMIUM}, which is not installed:"
            " apt-get install -y chromium (scripts/ensure-services installs it)"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """The machine's Chromium, headless, for the whole session."""
    playwright = await async_playwright().start()
    try:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()
    finally:
        await playwright.stop()


@pytest.fixture
def offsite() -> list[str]:
    """The URLs off this machine that the test's ``page`` asked for, each aborted."""
    return []


@pytest.fixture
async def page(browser: Browser, offsite: list[str]) -> AsyncIterator[Page]:
    """A page of its own browser context, let at loopback and ``data:`` URLs only."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})

    async def on_machine_only(route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).hostname in LOOPBACK_HOSTS:
            await route.continue_()
        else:
            offsite.append(url)
            await route.abort("internetdisconnected")

    await context.route("**/*", on_machine_only)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    yield page
    await context.close()


@pytest.fixture
async def api_url(service: JobService) -> AsyncIterator[str]:
    """The root URL of the REST API over the test's service, served on a loopback port."""
    async with serve(create_app(service)) as url:
        yield url
