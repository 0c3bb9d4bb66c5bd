"""The interactive API docs page, served with its Swagger UI assets from the package.

FastAPI's own page loads Swagger UI's script and stylesheet from a public CDN, so that on a
machine without internet it is a blank page. The fastapi-offline wheel ships the same files; the
service serves them itself, and the page names only its own URLs.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS_PATH = "/job-service-ui"
ASSETS_PATH = f"{DOCS_PATH}/assets"
SWAGGER_JS = f"{ASSETS_PATH}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS_PATH}/swagger-ui.css"
FAVICON = f"{ASSETS_PATH}/favicon.png"
_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def add_docs(app: FastAPI) -> None:
    """Serve the docs page of ``app``'s OpenAPI document at ``DOCS_PATH``, open to anyone as
    the document itself is."""
    app.mount(ASSETS_PATH, StaticFiles(directory=_ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or ""

    async def docs(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, every URL the page names keeps that prefix.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=root + SWAGGER_JS,
            swagger_css_url=root + SWAGGER_CSS,
            swagger_favicon_url=root + FAVICON,
        )

    app.add_route(DOCS_PATH, docs, include_in_schema=False)
