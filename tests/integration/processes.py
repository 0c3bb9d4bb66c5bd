"""Running the real ``jobservice`` command in a child process, against the test's Temporal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from jobservice.settings import Settings

COMMAND = [sys.executable, "-m", "jobservice.cli.main"]
REFERENCE_WORKER = Path(__file__).parents[2] / "examples" / "reference_worker.py"


def environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["JOBSERVICE_TEMPORAL__ADDRESS"] = settings.temporal.address
    env["JOBSERVICE_TEMPORAL__TASK_QUEUE"] = settings.temporal.task_queue
    env["JOBSERVICE_RABBITMQ__TRACKING_PIPE"] = settings.rabbitmq.tracking_pipe
    env["JOBSERVICE_RABBITMQ__DEAD_LETTER_PIPE"] = settings.rabbitmq.dead_letter_pipe
    if settings.database.url is not None:
        env["JOBSERVICE_DATABASE__URL"] = settings.database.url.get_secret_value()
    # Tests start many processes on one host, beside other test runs: none serves health and
    # metrics on the default ports unless its test gives it ports of its own.
    env["JOBSERVICE_MONITOR__PORT"] = "0"
    env["JOBSERVICE_MONITOR__TEMPORAL_METRICS_PORT"] = "0"
    return env


def monitor_env(port: int, temporal_metrics_port: int = 0) -> dict[str, str]:
    """The environment that has a process serve health and metrics on ``port``."""
    return {
        "JOBSERVICE_MONITOR__PORT": str(port),
        "JOBSERVICE_MONITOR__TEMPORAL_METRICS_PORT": str(temporal_metrics_port),
    }


def start(
    settings: Settings, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, *args],
        env={**environment(settings), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_reference_worker(queue: str, *args: str) -> subprocess.Popen[str]:
    """The example external worker consuming ``queue``."""
    command = [sys.executable, str(REFERENCE_WORKER), "--queue", queue, *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def run(
    settings: Settings,
    args: Sequence[str],
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env={**environment(settings), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop(*running: subprocess.Popen[str] | None) -> None:
    """Terminate those of ``running`` still running, and wait for each to end."""
    for process in running:
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(30)
