"""The dashboard's page budget: the jobs list's first page with 10,000 jobs in the database.

    python -m bench.dashboard [--jobs 10000] [--runs 30]

Starts its own Temporal dev server (the list asks it whether workers poll, for jobs that do
not move) and a scratch SQLite job database holding ``jobs`` jobs over five partitions, a
fifth of them Active, each with two labels; then renders, in this process through the API's
own ASGI app and with no read shared between renders, the list's first page (newest first,
all partitions), a filtered page and a deep page, ``runs`` times each, and prints the
medians and 95th percentiles of the server-side time against the target: 200 ms for the
first page.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx
from sqlalchemy import insert

from bench.database import scratch_database
from jobservice.db.engine import create_database_engine
from jobservice.db.tables import JobLabelRow, JobRow
from jobservice.jobs.status import JobStatus
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer
from jobservice.service.job_service import JobService
from jobservice.settings import Settings, TemporalSettings, get_settings
from jobservice.temporal.connection import connect
from jobservice.web.app import create_app
from jobservice.web.dashboard.feed import JobFeed

TARGET_SECONDS = 0.2
_STATUSES = [
    JobStatus.COMPLETED,
    JobStatus.COMPLETED,
    JobStatus.ACTIVE,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
]


def fill(url: str, jobs: int) -> None:
    """``jobs`` job rows as the workflows would leave them, inserted in bulk."""
    now = int(time.time() * 1000)
    rows: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    for n in range(jobs):
        status = _STATUSES[n % len(_STATUSES)]
        partition, job_id = f"tenant-{n % 5}", f"job-{n:06d}"
        done = 1000 if status is JobStatus.COMPLETED else (n * 7) % 1000
        rows.append(
            {
                "partition_id": partition,
                "job_id": job_id,
                "name": f"nightly export {n}",
                "labels": {"team": f"t{n % 12}", "run": f"r{n % 100}"},
                "definition": {"batchType": "range", "batchDefinition": "0-1000"},
                "definition_hash": "0" * 64,
                "status": status.value,
                "percentage_complete": done / 10,
                "total": 1000,
                "completed": done,
                "failed": 0,
                "in_flight": 0 if status.is_terminal else 50,
                "splitting_complete": True,
                "items_per_second": 120.0 if status is JobStatus.ACTIVE else None,
                "eta_seconds": 8.0 if status is JobStatus.ACTIVE else None,
                "failures": [],
                "prerequisite_job_ids": [],
                "delay": 0,
                "create_time": now - (jobs - n) * 1000,
                "last_update_time": now,
            }
        )
        labels += [
            {"partition_id": partition, "job_id": job_id, "label": key, "value": value}
            for key, value in rows[-1]["labels"].items()
        ]
    engine = create_database_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(JobRow), rows)
        connection.execute(insert(JobLabelRow), labels)
    engine.dispose()


async def timings(http: httpx.AsyncClient, path: str, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = await http.get(path, headers={"Accept": "text/html"})
        seconds.append(time.perf_counter() - started)
        answer.raise_for_status()
    return seconds


async def main(jobs: int, runs: int) -> None:
    with scratch_database() as database:
        assert database.url is not None
        fill(database.url.get_secret_value(), jobs)
        async with DevServer(binary=get_settings().dev.temporal_binary()) as server:
            temporal = TemporalSettings(address=server.address, task_queue="bench-dashboard")
            settings = Settings(temporal=temporal, database=database)
            service = JobService(await connect(temporal), settings=settings)
            app = create_app(service)
            # Lists on the same filters share their reads for a second; every render here
            # reads the database afresh, as the first page opened does.
            app.state.dashboard_feed = JobFeed(service, interval=0.0)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                await timings(http, "/dashboard", 3)  # templates compiled, connections open
                pages = {
                    "first page": "/dashboard",
                    "filtered (label, status)": "/dashboard?label=team%3Dt3&status=Completed",
                    "page 200 of 400": "/dashboard?page=200",
                }
                print(
                    f"jobs list with {jobs:,} jobs, {runs} renders each (server side, in process)"
                )
                for name, path in pages.items():
                    seconds = sorted(await timings(http, path, runs))
                    median = statistics.median(seconds)
                    p95 = seconds[int(0.95 * (len(seconds) - 1))]
                    print(f"  {name:<26} median {median * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms")
                    if name == "first page":
                        verdict = "within" if median <= TARGET_SECONDS else "OVER"
                        print(f"  {'':<26} {verdict} the {TARGET_SECONDS * 1000:.0f} ms target")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    arguments = parser.parse_args()
    eventloop.run(main(arguments.jobs, arguments.runs))
