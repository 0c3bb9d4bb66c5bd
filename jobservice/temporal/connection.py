"""Connecting to Temporal: a client on the pydantic data converter, and the runtime that serves
the SDK's own metrics."""

from __future__ import annotations

import functools
import logging

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from jobservice.settings import TemporalSettings
from jobservice.temporal.cluster import connect_service

_log = logging.getLogger(__name__)


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
