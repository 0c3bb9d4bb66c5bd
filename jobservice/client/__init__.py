"""A Python client of the job service's REST API, waiting or asyncio.

::

    with JobServiceClient("http://127.0.0.1:8080", partition="tenant-a") as jobs:
        jobs.create_job("nightly", NewJob(...))
        print(jobs.get_job("nightly").status)

A client works in one partition, given when it is made, as an API key usually opens one;
a job call names another with ``partition=``. Calls take and return the models the API
itself reads and writes, re-exported here: :class:`NewJob` (or a flat :class:`JobDefinition`)
in; :class:`JobPublic`, :class:`JobStatus` and :class:`Health` out.

Errors: a refused call raises a :class:`JobServiceClientError` of its status, whose text is
the API's ``message`` and which holds ``status`` and ``url``. Where a status stands for one
error of the service layer, the client's error is that error too: a 404 is a
:class:`~jobservice.errors.JobNotFoundError`, a 403 "already exists" a
:class:`~jobservice.errors.JobConflictError`, a 503 and a call that got no answer an
:class:`~jobservice.errors.UnavailableError`, so that code written against
:class:`~jobservice.service.job_service.JobService` catches the same errors from the client.
A 400 stands for several (an invalid job, request or state change), so
:class:`BadRequestError` is only a :class:`~jobservice.errors.JobServiceError`. 401 and 403
come from the API's key check, whose errors are the server's own: a
:class:`NotAuthorizedError` is either, a :class:`ForbiddenError` the 403 alone.
"""

from jobservice.client._call import JobFilters, JobListQuery, JobSelection
from jobservice.client._clients import AsyncJobServiceClient, JobServiceClient
from jobservice.client._endpoints import DEFAULT_TIMEOUT
from jobservice.client._errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    JobServiceClientError,
    NotAuthorizedError,
    NotFoundError,
    ServiceUnavailableError,
    UnreachableError,
)
from jobservice.jobs.definition import JobDefinition, NewJob
from jobservice.jobs.public import Failure, FailurePage, Health, JobPublic
from jobservice.jobs.status import JobStatus

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncJobServiceClient",
    "BadRequestError",
    "ConflictError",
    "Failure",
    "FailurePage",
    "ForbiddenError",
    "Health",
    "JobDefinition",
    "JobFilters",
    "JobListQuery",
    "JobPublic",
    "JobSelection",
    "JobServiceClient",
    "JobServiceClientError",
    "JobStatus",
    "NewJob",
    "NotAuthorizedError",
    "NotFoundError",
    "ServiceUnavailableError",
    "UnreachableError",
]
