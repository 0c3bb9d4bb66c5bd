"""Connecting to Temporal, the search attributes that make jobs findable in the Web UI, and the
fairness that keeps one job from holding the others back."""

from __future__ import annotations

import functools
import hashlib
import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import Priority, SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError

from jobservice.cluster import connect_service
from jobservice.errors import UnavailableError
from jobservice.settings import TemporalSettings

_log = logging.getLogger(__name__)

JOB_ID = SearchAttributeKey.for_keyword("JobId")
JOB_PARTITION = SearchAttributeKey.for_keyword("JobPartition")
JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
SEARCH_ATTRIBUTES = (JOB_ID, JOB_PARTITION, JOB_STATUS)


def dev_server_search_attribute_args() -> list[str]:
    """``temporal server start-dev`` arguments that register jobservice's search attributes."""
    return [
        arg for key in SEARCH_ATTRIBUTES for arg in ("--search-attribute", f"{key.name}=Keyword")
    ]


FAIRNESS_DYNAMIC_CONFIG = {
    "matching.useNewMatcher": "true",
    "matching.enableFairness": "true",
    "matching.enableMigration": "true",
}
"""The Temporal server's dynamic config under which matching serves every job in turn. Without
it, tasks of a task queue are served first in, first out, and a job that submitted thousands of
them makes the next job wait behind them all."""

_FAIRNESS_KEY_BYTES = 64
"""The longest fairness key Temporal takes."""


def job_priority(partition: str, job_id: str) -> Priority:
    """What the job's workflows and activities are started with: a fairness key of the job's
    own, so that matching serves the tasks of all running jobs in turn, however many tasks each
    has queued. Keyed by job rather than by partition: one partition's huge job must not hold
    back the same partition's small one."""
    key = f"{partition}/{job_id}"
    if len(key.encode()) > _FAIRNESS_KEY_BYTES:
        key = hashlib.sha256(key.encode()).hexdigest()[:_FAIRNESS_KEY_BYTES]
    return Priority(fairness_key=key)


def dev_server_fairness_args() -> list[str]:
    """``temporal server start-dev`` arguments that turn fairness on."""
    return [
        arg
        for key, value in FAIRNESS_DYNAMIC_CONFIG.items()
        for arg in ("--dynamic-config-value", f"{key}={value}")
    ]


async def connect(settings: TemporalSettings, *, runtime: Runtime | None = None) -> Client:
    """A client for the configured cluster, on ``runtime`` (default: the SDK's own), or an
    :class:`UnavailableError` saying what to do."""
    return Client(
        await connect_service(settings, runtime),
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
    )


@functools.cache
def metrics_runtime(port: int) -> Runtime | None:
    """A Temporal runtime whose SDK serves its own metrics on 127.0.0.1:``port``, for the
    clients and workers made on it; None when that port is taken (said in a warning).

    Made once per port and process: the SDK binds the port when the runtime is made, and holds
    it for as long as the process lives."""
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=f"127.0.0.1:{port}",
                    # As Prometheus names them: counters end in _total, durations in seconds,
                    # like jobservice's own metrics beside them on one /metrics.
                    counters_total_suffix=True,
                    durations_as_seconds=True,
                )
            )
        )
    except (ValueError, RuntimeError) as exc:
        _log.warning(
            "the Temporal SDK cannot serve its metrics on 127.0.0.1:%d (%s); going on without "
            "them. Set JOBSERVICE_MONITOR__TEMPORAL_METRICS_PORT to a free port, or 0",
            port,
            exc,
        )
        return None


async def ensure_search_attributes(client: Client) -> None:
    """Register the job search attributes on the namespace if they are missing."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    except RPCError as exc:
        raise UnavailableError(
            f"the namespace {client.namespace!r} lacks the search attributes "
            f"{', '.join(missing)} and they could not be added ({exc.message}); "
            "register them as Keyword attributes"
        ) from None
