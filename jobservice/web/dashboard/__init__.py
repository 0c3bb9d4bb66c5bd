"""The job dashboard: server-rendered pages over the service layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def include_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/dashboard``, its own assets with it: it needs no network."""
    from fastapi.staticfiles import StaticFiles

    from jobservice.web.dashboard import batches, ledger, live, pages, pipes, submitting
    from jobservice.web.dashboard.routing import PREFIX

    app.include_router(pages.router)
    app.include_router(live.router)
    app.include_router(batches.router)
    app.include_router(ledger.router)
    app.include_router(submitting.router)
    app.include_router(pipes.router)
    static = StaticFiles(packages=[("jobservice.web.dashboard", "static")])
    app.mount(f"{PREFIX}/static", static, name="dashboard-static")
