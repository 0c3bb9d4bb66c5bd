"""What the REST API's endpoints and the dashboard's pages are given: the service layer and the
settings the app was made with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from jobservice.service.job_service import JobService
from jobservice.settings import Settings


def service_of(request: Request) -> JobService:
    service: JobService = request.app.state.service
    return service


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _service(request: Request) -> JobService:
    # async: FastAPI runs a plain function dependency on a thread, a hand-off per request.
    return service_of(request)


ServiceDep = Annotated[JobService, Depends(_service)]
"""An endpoint's parameter that is the app's :class:`JobService`."""
