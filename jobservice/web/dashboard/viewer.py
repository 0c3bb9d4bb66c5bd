"""Who looks at the dashboard: the partitions their API key opens, kept in a cookie.

With API keys configured the dashboard asks for one and shows only its partitions; without
keys it is as open as the REST API (which a production API refuses to be at start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from jobservice.db.query import JobQuery
from jobservice.errors import JobServiceError
from jobservice.settings import Settings
from jobservice.web.security import (
    NotAuthenticatedError,
    PartitionForbiddenError,
    check_every_partition,
    key_partitions,
)

KEY_COOKIE = "jobservice_key"


class LoginRequiredError(JobServiceError):
    """No API key yet, or one the service does not know: the dashboard asks for one."""


@dataclass(frozen=True)
class Viewer:
    """The partitions a dashboard user may see (``None``: every one), and whether they gave
    a key to see them."""

    partitions: tuple[str, ...] | None
    signed_in: bool = False

    def check(self, partition: str) -> None:
        if self.partitions is not None and partition not in self.partitions:
            raise PartitionForbiddenError(f"this API key may not use partition {partition!r}")

    def check_every(self) -> None:
        """Refuse a viewer who may not act for every partition (a pipe is all of theirs)."""
        check_every_partition(self.partitions)

    def query(self, partition: str | None = None, **parameters: Any) -> JobQuery:
        """A query of ``partition``, or of every partition the viewer may see."""
        if partition:
            self.check(partition)
            return JobQuery(partition_id=partition, **parameters)
        return JobQuery(partitions=self.partitions, **parameters)


def viewer_of(request: Request) -> Viewer:
    """The viewer whose API key the request's cookie holds, or a :class:`LoginRequiredError`."""
    settings: Settings = request.app.state.settings
    if not settings.api.keys:
        return Viewer(None)
    key = request.cookies.get(KEY_COOKIE)
    if not key:
        raise LoginRequiredError("this dashboard needs an API key")
    try:
        partitions = key_partitions(settings.api, key)
    except NotAuthenticatedError:
        raise LoginRequiredError("the API key is not known") from None
    if partitions is None or "*" in partitions:
        return Viewer(None, signed_in=True)
    return Viewer(tuple(partitions), signed_in=True)
