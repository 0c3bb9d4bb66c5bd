"""The endpoints a worker or tracking consumer serves: liveness, readiness with its reasons,
and Prometheus text that carries the Temporal SDK's metrics too."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from jobservice.metrics import TRACKING_DEAD_LETTERS
from jobservice.processes.devserver import free_port
from jobservice.processes.monitor import monitoring
from jobservice.settings import MonitorSettings
from tests.scrape import sample, scrape


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        yield client


async def test_a_process_is_live_at_once_and_ready_once_each_part_says_so(
    http: httpx.AsyncClient,
) -> None:
    stop = asyncio.Event()
    port = free_port()
    async with monitoring(MonitorSettings(port=port), stop) as monitor:
        assert monitor.url == f"http://127.0.0.1:{port}"
        assert (await http.get(f"{monitor.url}/healthz")).status_code == 200

        # Before any part has said what it must be doing
        starting = await http.get(f"{monitor.url}/readyz")
        assert starting.status_code == 503
        assert starting.json() == {"ready": False, "reason": "starting"}

        # While one of its parts is not doing its work
        consuming = False

        async def worker() -> str | None:
            return None

        async def consumer() -> str | None:
            return None if consuming else "not consuming the tracking pipe"

        monitor.readiness.add(worker, consumer)
        waiting = await http.get(f"{monitor.url}/readyz")
        assert (waiting.status_code, waiting.json()["reason"]) == (
            503,
            "not consuming the tracking pipe",
        )

        consuming = True
        ready = await http.get(f"{monitor.url}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})

        # Once told to stop, it is no longer ready, though it still answers
        stop.set()
        stopping = await http.get(f"{monitor.url}/readyz")
        assert (stopping.status_code, stopping.json()["reason"]) == (503, "shutting down")
        assert (await http.get(f"{monitor.url}/healthz")).status_code == 200

    with pytest.raises(httpx.ConnectError):
        await http.get(f"http://127.0.0.1:{port}/healthz")


async def test_metrics_are_prometheus_text_of_the_process(http: httpx.AsyncClient) -> None:
    async with monitoring(MonitorSettings(port=free_port()), asyncio.Event()) as monitor:
        assert monitor.url is not None
        before = sample(await scrape(http, monitor.url), "jobservice_tracking_dead_letters_total")
        assert before is not None
        TRACKING_DEAD_LETTERS.inc(3)

        response = await http.get(f"{monitor.url}/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert sample(response.text, "jobservice_tracking_dead_letters_total") == before + 3
    assert "# TYPE jobservice_items_total counter" in response.text


async def test_a_workers_metrics_include_the_temporal_sdks(http: httpx.AsyncClient) -> None:
    # Given a monitor whose Temporal runtime exports the SDK's metrics, one of them counted
    settings = MonitorSettings(port=free_port(), temporal_metrics_port=free_port())
    async with monitoring(settings, asyncio.Event(), temporal=True) as monitor:
        assert monitor.runtime is not None
        monitor.runtime.metric_meter.create_counter("monitor_probe").add(2)

        # When Prometheus scrapes the monitor
        assert monitor.url is not None
        text = await scrape(http, monitor.url)

    # Then one scrape holds both the process's metrics and the SDK's, each on lines of its own
    assert "jobservice_items_total" in text
    # (the SDK prefixes its own metrics with temporal_, not those made on its meter; a
    # parser names the samples of a counter with _total)
    assert sample(text, "monitor_probe_total", service_name="temporal-core-sdk") == 2


async def test_port_zero_serves_nothing_and_makes_no_temporal_runtime() -> None:
    settings = MonitorSettings(port=0, temporal_metrics_port=free_port())
    async with monitoring(settings, asyncio.Event(), temporal=True) as monitor:
        assert (monitor.url, monitor.runtime) == (None, None)


async def test_a_monitor_port_that_is_taken_is_a_warning_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given another process listens on the port
    with socket.create_server(("127.0.0.1", 0)) as taken:
        settings = MonitorSettings(port=taken.getsockname()[1], temporal_metrics_port=free_port())
        with caplog.at_level(logging.WARNING):
            async with monitoring(settings, asyncio.Event(), temporal=True) as monitor:
                # Then the process goes on, serving nothing and exporting nothing
                assert (monitor.url, monitor.runtime) == (None, None)

    assert "Set JOBSERVICE_MONITOR__PORT to a free port, or 0" in caplog.text


async def test_a_temporal_metrics_port_that_is_taken_leaves_out_the_sdks_metrics(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        settings = MonitorSettings(port=free_port(), temporal_metrics_port=taken.getsockname()[1])
        with caplog.at_level(logging.WARNING):
            async with monitoring(settings, asyncio.Event(), temporal=True) as monitor:
                assert monitor.runtime is None
                response = await http.get(f"{monitor.url}/metrics")

    assert response.status_code == 200
    assert "jobservice_items_total" in response.text
    assert "JOBSERVICE_MONITOR__TEMPORAL_METRICS_PORT" in caplog.text
