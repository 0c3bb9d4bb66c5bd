"""The command-line benchmark: how long ``jobservice`` takes to answer.

    python -m bench.cli [--runs 7]

Starts its own Temporal dev server and a scratch job database with one job in it (no worker
is needed: ``status`` reads the job's row), then times ``jobservice --help`` and
``jobservice status ID`` as a shell would run them, ``runs`` times each, and prints the
medians against the targets (``--help`` at most 0.35 s, ``status`` at most 0.6 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.database import scratch_database
from jobservice.jobs.definition import JobDefinition
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer
from jobservice.service.job_service import JobService
from jobservice.settings import Settings, TemporalSettings, get_settings
from jobservice.temporal.connection import connect

COMMAND = [str(Path(sys.executable).parent / "jobservice")]
TARGETS = {"--help": 0.35, "status": 0.6}


def median_seconds(args: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*COMMAND, *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main(runs: int) -> None:
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            temporal = TemporalSettings(address=server.address, task_queue="bench-cli")
            settings = Settings(temporal=temporal, database=database)
            service = JobService(await connect(temporal), settings=settings)
            definition = JobDefinition(
                batch_type="range", batch_definition="0-10", target_pipe="local:noop"
            )
            await service.submit("bench-cli", definition)
            assert database.url is not None
            env = {
                **os.environ,
                "JOBSERVICE_TEMPORAL__ADDRESS": server.address,
                "JOBSERVICE_TEMPORAL__TASK_QUEUE": "bench-cli",
                "JOBSERVICE_DATABASE__URL": database.url.get_secret_value(),
            }
            figures = {
                "--help": await asyncio.to_thread(median_seconds, ["--help"], env, runs),
                "status": await asyncio.to_thread(
                    median_seconds, ["status", "bench-cli"], env, runs
                ),
            }
    for name, seconds in figures.items():
        target = TARGETS[name]
        verdict = "met" if seconds <= target else "MISSED"
        line = f"jobservice {name}: median {seconds:.2f} s of {runs} runs"
        print(f"{line} (target <= {target} s: {verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    eventloop.run(main(parser.parse_args().runs))
