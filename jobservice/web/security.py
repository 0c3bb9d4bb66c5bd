"""Partitions are a security boundary: an API key opens only the partitions it is given."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from fastapi import Request

from jobservice.errors import JobServiceError
from jobservice.jobs.public import API_KEY_HEADER
from jobservice.settings import ApiSettings


class NotAuthenticatedError(JobServiceError):
    """No API key, or one the service does not know."""


class PartitionForbiddenError(JobServiceError):
    """The API key does not open this partition."""


class InsecureSettingsError(JobServiceError):
    """A production API without keys."""


def check_settings(settings: ApiSettings) -> None:
    if settings.production and not settings.keys:
        raise InsecureSettingsError(
            "JOBSERVICE_API__PRODUCTION is set but no API keys are configured; set "
            'JOBSERVICE_API__KEYS, e.g. \'{"<key>": ["<partition>"]}\''
        )


def _presented_key(request: Request) -> str | None:
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return key
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticate(request: Request, settings: ApiSettings) -> list[str] | None:
    """The partitions the request's API key opens (None: every one, no keys are set), or
    raise saying why the request has no known key."""
    return key_partitions(settings, _presented_key(request))


def key_partitions(settings: ApiSettings, presented: str | None) -> list[str] | None:
    """The partitions the API key ``presented`` opens (None: every one, no keys are set), or
    raise saying why it is not a known key."""
    if not settings.keys:
        return None
    if presented is None:
        raise NotAuthenticatedError(
            f"an API key is required: send it in the {API_KEY_HEADER} header, or as "
            "Authorization: Bearer <key>"
        )
    for key, partitions in settings.keys.items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            return partitions
    raise NotAuthenticatedError("the API key is not known")


def check_every_partition(partitions: Sequence[str] | None) -> None:
    """Let a key that opens ``partitions`` (None: every one) act for every partition, as a
    pipe's limit does, or raise saying why not."""
    if partitions is not None and "*" not in partitions:
        raise PartitionForbiddenError(
            "a pipe's limit holds for every partition: changing it takes an API key that "
            'opens them all ("*")'
        )


def authorize(request: Request, settings: ApiSettings, partition_id: str) -> None:
    """Let the request at ``partition_id``, or raise saying why not."""
    partitions = authenticate(request, settings)
    if partitions is None or "*" in partitions or partition_id in partitions:
        return
    raise PartitionForbiddenError(f"this API key may not use partition {partition_id!r}")
