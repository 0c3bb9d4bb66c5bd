"""Reaching the Temporal cluster: the one connection every process makes, and what it says
when nobody answers.

Only the SDK's service client is loaded here, not its workflow client: ``jobservice status``
needs no more than that to ask Temporal about a task queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.service import ConnectConfig, ServiceClient

from jobservice.errors import UnavailableError
from jobservice.settings import TemporalSettings

if TYPE_CHECKING:
    from temporalio.runtime import Runtime


async def connect_service(
    settings: TemporalSettings, runtime: Runtime | None = None
) -> ServiceClient:
    """A connection to the configured cluster, on ``runtime`` (default: the SDK's own), or an
    :class:`UnavailableError` saying what to do."""
    try:
        return await ServiceClient.connect(
            ConnectConfig(target_host=settings.address, runtime=runtime)
        )
    except RuntimeError as exc:
        raise UnavailableError(
            f"cannot reach Temporal at {settings.address} ({exc}); start the embedded stack with "
            "`jobservice dev`, or point JOBSERVICE_TEMPORAL__ADDRESS at your cluster"
        ) from None
