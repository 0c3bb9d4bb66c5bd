"""The HTTP status of each refusal of the service layer, for the API and the dashboard alike."""

from __future__ import annotations

from jobservice.errors import (
    InvalidJobError,
    InvalidRequestError,
    JobConflictError,
    JobNotFoundError,
    JobServiceError,
    JobStateError,
    UnavailableError,
)
from jobservice.web.security import NotAuthenticatedError, PartitionForbiddenError

_STATUS = {
    InvalidJobError: 400,
    InvalidRequestError: 400,
    JobStateError: 400,
    NotAuthenticatedError: 401,
    PartitionForbiddenError: 403,
    JobNotFoundError: 404,
    # "Job already exists", as the reference answers a different body under a taken id.
    JobConflictError: 403,
    UnavailableError: 503,
}


def status_of(exc: JobServiceError) -> int:
    return next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
