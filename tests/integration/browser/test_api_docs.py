"""The API docs page, as a browser shows it on a machine without internet."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, expect

from jobservice.settings import ApiSettings, Settings
from jobservice.web.api.docs import DOCS_PATH, FAVICON, SWAGGER_CSS, SWAGGER_JS
from jobservice.web.app import create_app
from tests.integration.browser.support import screenshot
from tests.integration.support import API, api_client

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


async def test_the_docs_page_lists_every_operation_with_nothing_from_off_the_machine(
    page: Page, offsite: list[str], api_url: str
) -> None:
    async with httpx.AsyncClient(base_url=api_url) as client:
        document = (await client.get(f"{API}/openapi.json")).json()
    operations = [
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in _METHODS
    ]

    await page.goto(f"{api_url}{DOCS_PATH}")
    blocks = page.locator(".opblock")
    await expect(blocks).to_have_count(len(operations))
    submit = page.locator(
        ".opblock-put",
        has=page.locator(f'[data-path="{API}/partitions/{{partition_id}}/jobs/{{job_id}}"]'),
    )
    await expect(submit).to_have_count(1)
    await expect(page.locator(".info .title")).to_contain_text("jobservice")
    await screenshot(page, "api-docs")
    assert offsite == []


async def test_the_docs_page_names_assets_the_service_serves_itself() -> None:
    app = create_app(settings=Settings(api=ApiSettings()))
    async with api_client(app) as client:
        html = (await client.get(DOCS_PATH)).text
        named = set(re.findall(r'(?:href|src)="([^"]+)"', html))
        assert named == {SWAGGER_JS, SWAGGER_CSS, FAVICON}
        for url, kind in ((SWAGGER_JS, "text/javascript"), (SWAGGER_CSS, "text/css")):
            answer = await client.get(url)
            assert answer.status_code == 200, url
            assert answer.headers["content-type"].startswith(kind), url
            assert len(answer.content) > 100_000, url
        assert (await client.get(FAVICON)).headers["content-type"] == "image/png"
