"""The API under load: requests/s and latency of what workers, dashboards and scripts poll.

    python -m bench.api [--clients 40] [--seconds 10] [--items 3000000]

Each of ``clients`` keep-alive connections asks in turn for a job, a page of 10 jobs and a
job's status, for ``seconds``; the load comes from this process, on the same cores, through
a plain HTTP/1.1 client of its own (far cheaper than the server, so that it measures the
server), and its CPU is shown apart. Three runs:

- idle: ``jobservice dev``, the API and worker in one process, nothing running;
- beside a job, embedded: the same stack while an ``items``-item ``local:noop`` job runs;
- beside a job, separate processes: ``jobservice api`` and ``jobservice worker`` beside a
  Temporal dev server, the job database a SQLite file both share.

Beside a job, the job's items/s is measured for as long without the load, then with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psutil

from bench.database import scratch_database
from jobservice.processes import eventloop
from jobservice.processes.devserver import DevServer, free_port
from jobservice.settings import get_settings

COMMAND = [sys.executable, "-m", "jobservice.cli.main"]
BASE = "/job-service/v1/partitions/bench/jobs"
SEEDED = 20


@dataclass
class Load:
    """What the clients saw."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def at(self, share: float) -> float:
        """The latency, in milliseconds, that ``share`` of the requests took at most."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000

    def line(self, name: str) -> str:
        ordered, at, rate = self.latencies, self.at, self.rate
        errors = f", errors {self.errors}" if self.errors else ""
        return (
            f"{name}: {rate:,.0f} requests/s, p50 {at(0.5):.1f} ms, p95 {at(0.95):.1f} ms, "
            f"p99 {at(0.99):.1f} ms{errors}; CPU per request: server "
            f"{self.server_cpu * 1e6 / len(ordered):,.0f} µs, load generator "
            f"{self.client_cpu * 1e6 / len(ordered):,.0f} µs"
        )


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str, body: bytes
) -> tuple[int, bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    answer = await reader.readuntil(b"\r\n\r\n")
    status = int(answer[9:12])
    headers = answer.lower()
    if b"transfer-encoding: chunked" in headers:
        data = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            data += await reader.readexactly(size + 2)
            if size == 0:
                return status, data
    if b"content-length:" not in headers:
        return status, b""  # a 204
    start = headers.index(b"content-length:") + len(b"content-length:")
    length = int(headers[start : headers.index(b"\r\n", start)])
    return status, await reader.readexactly(length)


async def _client(port: int, paths: list[str], until: float, load: Load, offset: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    turn = offset
    try:
        while time.perf_counter() < until:
            path = paths[turn % len(paths)]
            turn += 1
            started = time.perf_counter()
            status, _ = await _request(reader, writer, "GET", path, b"")
            load.latencies.append(time.perf_counter() - started)
            if status != 200:
                load.errors[status] = load.errors.get(status, 0) + 1
    finally:
        writer.close()


async def apply_load(port: int, server: psutil.Process, clients: int, seconds: float) -> Load:
    """``clients`` connections asking in turn for a job, a page of jobs and a status."""
    paths: list[str] = []
    for n in range(SEEDED):
        paths += [f"{BASE}/seed-{n}", f"{BASE}?limit=10", f"{BASE}/seed-{n}/status"]
    load = Load()
    me = psutil.Process()
    mine, theirs = me.cpu_times(), server.cpu_times()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_client(port, paths, until, load, 3 * n) for n in range(clients)))
    load.seconds = time.perf_counter() - started
    mine_after, theirs_after = me.cpu_times(), server.cpu_times()
    load.client_cpu = mine_after.user + mine_after.system - mine.user - mine.system
    load.server_cpu = theirs_after.user + theirs_after.system - theirs.user - theirs.system
    return load


async def _call(port: int, method: str, path: str, document: object = None) -> tuple[int, object]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        body = json.dumps(document).encode() if document is not None else b""
        status, data = await _request(reader, writer, method, path, body)
    finally:
        writer.close()
    return status, json.loads(data) if data else None


async def submit(port: int, job_id: str, items: int) -> None:
    definition = {
        "task": {
            "taskClassifier": "BatchWorker",
            "taskApiVersion": 1,
            "taskPipe": "batch-worker",
            "targetPipe": "local:noop",
            "taskData": {
                "batchType": "range",
                "batchDefinition": f"0-{items}",
                "targetPipe": "local:noop",
            },
        }
    }
    status, answer = await _call(port, "PUT", f"{BASE}/{job_id}", definition)
    if status not in (201, 204):
        raise SystemExit(f"submitting {job_id} was answered {status}: {answer}")


async def done_items(port: int, job_id: str) -> tuple[int, str]:
    status, job = await _call(port, "GET", f"{BASE}/{job_id}")
    assert status == 200 and isinstance(job, dict), job
    return int(job["counts"]["completed"]), str(job["status"])


async def wait_for(port: int, job_id: str) -> None:
    for _ in range(600):
        if (await done_items(port, job_id))[1] in ("Completed", "Failed", "Cancelled"):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"{job_id} did not end within two minutes")


async def seed(port: int) -> None:
    for _ in range(300):  # the banner can come a moment before the API listens
        try:
            await _call(port, "GET", "/job-service/v1/ping")
            break
        except OSError:
            await asyncio.sleep(0.1)
    for n in range(SEEDED):
        await submit(port, f"seed-{n}", 100)
    for n in range(SEEDED):
        await wait_for(port, f"seed-{n}")


async def job_rate(port: int, job_id: str, seconds: float) -> float:
    first, _ = await done_items(port, job_id)
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    last, _ = await done_items(port, job_id)
    return (last - first) / (time.perf_counter() - started)


async def _banner(process: asyncio.subprocess.Process, ends: str) -> None:
    assert process.stdout is not None
    seen = ""
    while ends not in seen:
        line = await process.stdout.readline()
        if not line:
            raise SystemExit(f"the process ended before it said {ends!r}:\n{seen}")
        seen += line.decode()


@contextlib.asynccontextmanager
async def _process(env: dict[str, str], *args: str, ready: str) -> AsyncIterator[psutil.Process]:
    process = await asyncio.create_subprocess_exec(
        *COMMAND, *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        await asyncio.wait_for(_banner(process, ready), 120)
        yield psutil.Process(process.pid)
    finally:
        process.send_signal(2)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


def _env(api_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        JOBSERVICE_API__PORT=str(api_port),
        JOBSERVICE_MONITOR__PORT="0",
        JOBSERVICE_MONITOR__TEMPORAL_METRICS_PORT="0",
    )
    return env


async def beside_job(
    port: int, server: psutil.Process, clients: int, seconds: float, items: int, name: str
) -> tuple[Load, float, float]:
    """The load while a job of ``items`` runs, and the job's items/s without and with it."""
    job_id = f"big-{name}"
    await submit(port, job_id, items)
    await asyncio.sleep(3)  # past its start
    alone = await job_rate(port, job_id, seconds)
    rating = asyncio.create_task(job_rate(port, job_id, seconds))
    load = await apply_load(port, server, clients, seconds)
    loaded = await rating
    status, answer = await _call(port, "POST", f"{BASE}/{job_id}/cancel")
    if status != 204:
        print(f"  cancelling the job afterwards was answered {status}: {answer}")
    return load, alone, loaded


async def embedded(clients: int, seconds: float, items: int) -> Load:
    """The idle embedded stack's load; prints it, and the load beside a job."""
    api_port = free_port()
    with tempfile.TemporaryDirectory(prefix="jobservice-bench-api-") as folder:
        env = _env(api_port)
        env.update(
            JOBSERVICE_DEV__DATA_DIR=folder,
            JOBSERVICE_TEMPORAL__ADDRESS=f"127.0.0.1:{free_port()}",
            JOBSERVICE_DEV__UI_PORT=str(free_port()),
        )
        async with _process(env, "dev", ready="stops everything") as server:
            await seed(api_port)
            await apply_load(api_port, server, clients, 2)  # warm
            idle = await apply_load(api_port, server, clients, seconds)
            print(idle.line(f"idle embedded stack, {clients} clients"))
            load, alone, loaded = await beside_job(
                api_port, server, clients, seconds, items, "embedded"
            )
            print(load.line(f"embedded stack beside a {items:,}-item job, {clients} clients"))
            print(_slowed(alone, loaded))
    return idle


async def separate(clients: int, seconds: float, items: int) -> tuple[Load, float]:
    """The API process's load beside a job, and how much it slowed the job; prints both."""
    api_port = free_port()
    with scratch_database() as database:
        async with DevServer(binary=get_settings().dev.temporal_binary()) as temporal:
            env = _env(api_port)
            env.update(
                JOBSERVICE_TEMPORAL__ADDRESS=temporal.address,
                JOBSERVICE_DATABASE__URL=database.url.get_secret_value() if database.url else "",
            )
            async with (
                _process(env, "worker", "--no-tracking", ready="worker on"),
                _process(env, "api", ready="REST API on") as server,
            ):
                await seed(api_port)
                load, alone, loaded = await beside_job(
                    api_port, server, clients, seconds, items, "separate"
                )
                print(
                    load.line(
                        f"api process beside a {items:,}-item job (worker apart), {clients} clients"
                    )
                )
                print(_slowed(alone, loaded))
    return load, 1 - loaded / alone


def _slowed(alone: float, loaded: float) -> str:
    return (
        f"  the job: {alone:,.0f} items/s without the load, {loaded:,.0f} with it "
        f"(slowed {1 - loaded / alone:.0%})"
    )


async def main(clients: int, seconds: float, items: int) -> None:
    print(f"machine: {psutil.cpu_count()} cores; {clients} clients, {seconds:g} s a run")
    idle = await embedded(clients, seconds, items)
    beside, slowed = await separate(clients, seconds, items)
    targets = [
        ("idle embedded stack >= 1,000 requests/s", idle.rate >= 1000),
        ("idle embedded stack p95 <= 60 ms", idle.at(0.95) <= 60),
        ("beside a job, api apart, p95 <= 150 ms", beside.at(0.95) <= 150),
        ("beside a job, api apart, the job slowed <= 10%", slowed <= 0.10),
    ]
    for name, met in targets:
        print(f"target {name}: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--items", type=int, default=3_000_000)
    arguments = parser.parse_args()
    eventloop.run(main(arguments.clients, arguments.seconds, arguments.items))
