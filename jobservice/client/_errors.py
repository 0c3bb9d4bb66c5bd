"""What a call raises: the API's ``{"message": ...}`` and status, or why there was no answer."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from jobservice.errors import JobConflictError, JobNotFoundError, JobServiceError, UnavailableError


class JobServiceClientError(JobServiceError):
    """The API refused a call, or gave no answer the client can read.

    ``str(error)`` is the API's message; ``status`` is the HTTP status (None when no answer
    came), ``url`` the address the call went to.
    """

    def __init__(self, message: str, *, status: int | None, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url


class BadRequestError(JobServiceClientError):
    """400: a field, a query parameter or the job's current status does not allow the call."""


class NotAuthorizedError(JobServiceClientError):
    """401: no API key, or one the service does not know."""


class ForbiddenError(NotAuthorizedError):
    """403: the API key does not open this partition."""


class NotFoundError(JobServiceClientError, JobNotFoundError):
    """404: no such job in the partition."""


class ConflictError(JobServiceClientError, JobConflictError):
    """403 "already exists" (409 from earlier servers): the job id exists with a
    different body."""


class ServiceUnavailableError(JobServiceClientError, UnavailableError):
    """503: the API is up, but Temporal or the job database is not."""


class UnreachableError(ServiceUnavailableError):
    """No answer: the API cannot be connected to, or did not answer in time."""


_CONFLICT = "already exists in partition"
"""What the API's answer to a different body under a taken id says."""
_BY_STATUS: dict[int, type[JobServiceClientError]] = {
    400: BadRequestError,
    401: NotAuthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    503: ServiceUnavailableError,
}


def refusal(response: httpx.Response) -> JobServiceClientError:
    """The error an answer that is not a success stands for, with the API's message."""
    try:
        message = str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        # Not the API's own answer (a proxy's error page, say): its status is all there is.
        message = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    kind = _BY_STATUS.get(response.status_code, JobServiceClientError)
    if response.status_code == 403 and _CONFLICT in message:
        # The reference's answer to a different body under a taken id: 403, not 409.
        kind = ConflictError
    return kind(message, status=response.status_code, url=str(response.request.url))


def unreadable(response: httpx.Response, exc: ValidationError) -> JobServiceClientError:
    """A success whose body is not what the API sends: the base URL is likely not the API."""
    url = str(response.request.url)
    problem = exc.errors()[0]["msg"] if exc.errors() else str(exc)
    return JobServiceClientError(
        f"the answer from {url} is not the job service's: {problem}",
        status=response.status_code,
        url=url,
    )


def unreachable(request: httpx.Request, exc: httpx.TransportError) -> UnreachableError:
    url = str(request.url)
    cause = str(exc) or type(exc).__name__
    return UnreachableError(f"cannot reach the job service at {url}: {cause}", status=None, url=url)
