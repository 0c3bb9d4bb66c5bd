"""A shallow error hierarchy; each message tells the user what to do."""

from __future__ import annotations


class JobServiceError(Exception):
    """Base of every error jobservice raises on purpose."""


class InvalidJobError(JobServiceError):
    """The job definition cannot run: a bad field, an unknown plugin, builder or handler."""


class InvalidRequestError(JobServiceError):
    """A request parameter is wrong (a filter, a sort, a page): the API answers 400 with this."""


class JobNotFoundError(JobServiceError):
    """No job with that id in that partition."""


class JobConflictError(JobServiceError):
    """A job with that id exists with a different definition."""


class JobStateError(JobServiceError):
    """The operation does not apply to the job's current status."""


class BatchDefinitionError(JobServiceError):
    """Raised by a batch plugin for a definition it cannot split. Fails the job; never retried."""


class UnavailableError(JobServiceError):
    """A service jobservice needs (Temporal) cannot be reached."""
