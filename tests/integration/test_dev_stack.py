"""``jobservice dev``: the embedded stack keeps jobs in SQLite and stops cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import httpx

from jobservice.processes.devserver import free_port
from jobservice.settings import Settings, TemporalSettings
from tests.integration import processes
from tests.scrape import sample, scrape


def dev_settings(port: int) -> Settings:
    return Settings(temporal=TemporalSettings(address=f"127.0.0.1:{port}", task_queue="jobservice"))


async def start_dev(
    settings: Settings, data_dir: Path, ui_port: int, monitor_port: int = 0
) -> tuple[subprocess.Popen[str], str]:
    """Start ``jobservice dev``; returns it and its banner, once it says the worker runs."""
    dev = processes.start(
        settings,
        "dev",
        extra_env={
            "JOBSERVICE_DEV__DATA_DIR": str(data_dir),
            "JOBSERVICE_DEV__UI_PORT": str(ui_port),
            **processes.monitor_env(monitor_port, free_port() if monitor_port else 0),
        },
    )
    assert dev.stdout is not None
    banner = ""
    while not banner.endswith("stops everything\n"):
        line = await asyncio.to_thread(dev.stdout.readline)
        assert line, banner + (dev.stderr.read() if dev.stderr else "")
        banner += line
    return dev, banner


async def stop_dev(dev: subprocess.Popen[str]) -> tuple[str, int]:
    dev.send_signal(signal.SIGINT)
    out, _ = await asyncio.to_thread(dev.communicate, timeout=60)
    return out, dev.returncode


async def _watch(url: str) -> int:
    """Read a dashboard event stream until the server ends it; how many lines came."""
    lines = 0
    async with (
        httpx.AsyncClient(trust_env=False, timeout=None) as http,
        http.stream("GET", url) as events,
    ):
        async for _ in events.aiter_lines():
            lines += 1
    return lines


async def test_dev_keeps_jobs_across_restarts_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    settings = dev_settings(free_port())
    ui_port, monitor_port = free_port(), free_port()
    dev, banner = await start_dev(settings, tmp_path / "data", ui_port, monitor_port)
    monitor = f"http://127.0.0.1:{monitor_port}"
    try:
        submitted = await asyncio.to_thread(
            processes.run,
            settings,
            [
                "submit",
                "--job-id",
                "kept",
                "--batch-type",
                "range",
                "--definition",
                "0-20000",
                "--target-pipe",
                "local:noop",
                "--wait",
                "--json",
            ],
            extra_env={"JOBSERVICE_DEV__DATA_DIR": str(tmp_path / "data")},
        )
        assert submitted.returncode == 0, submitted.stderr
        # and its worker's endpoints say it is ready, and what it did
        async with httpx.AsyncClient(trust_env=False) as http:
            assert (await http.get(f"{monitor}/readyz")).json() == {"ready": True}
            text = await scrape(http, monitor)
        items = {"outcome": "completed", "target_pipe": "local:noop"}
        assert sample(text, "jobservice_items_total", **items) == 20000
        # and the dashboard it names shows the job, linked to its workflow in the Web UI
        dashboard = banner.split("dashboard  ", 1)[1].split()[0]
        async with httpx.AsyncClient(trust_env=False) as http:
            page = await http.get(f"{dashboard}/partitions/default/jobs/kept")
            assert page.status_code == 200 and "20,000" in page.text
            assert f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/job%2F" in page.text
        # and a page left open on its live list does not hold up the stop
        watching = asyncio.create_task(_watch(f"{dashboard}/events/jobs?key=default/kept"))
        await asyncio.sleep(1.5)
    finally:
        out, code = await stop_dev(dev)
    assert code == 0
    assert await asyncio.wait_for(watching, 10) > 0
    assert f"Web UI     http://127.0.0.1:{ui_port}" in banner
    assert f"monitor    {monitor}  (/healthz, /readyz, /metrics)" in banner
    assert "stopping" in out
    assert (tmp_path / "data" / "temporal.db").is_file()

    # When the stack starts again on the same data folder, the job is still there
    dev, _ = await start_dev(settings, tmp_path / "data", free_port())
    try:
        status = await asyncio.to_thread(
            processes.run,
            settings,
            ["status", "kept", "--json"],
            extra_env={"JOBSERVICE_DEV__DATA_DIR": str(tmp_path / "data")},
        )
    finally:
        _, code = await stop_dev(dev)
    assert status.returncode == 0, status.stderr
    job = json.loads(status.stdout)
    assert (job["status"], job["counts"]["completed"]) == ("Completed", 20000)
    assert code == 0


async def test_demo_runs_without_rabbitmq_and_says_so_once(tmp_path: Path) -> None:
    settings = dev_settings(free_port())
    env = {
        "JOBSERVICE_RABBITMQ__URL": "amqp://guest:guest@127.0.0.1:1/",
        "JOBSERVICE_DEV__DATA_DIR": str(tmp_path),
    }
    demo = processes.start(settings, "demo", "--items", "20000", extra_env=env)

    out, err = await asyncio.to_thread(demo.communicate, timeout=120)

    assert demo.returncode == 0, err
    assert "20,000 / 20,000 (100%)" in out
    assert err.count("cannot reach RabbitMQ") == 1, err
    assert err.count("Connection refused") == 1, err  # not once per try to reconnect
