"""Small helpers for integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from temporalio.client import Client

from jobservice.jobs.definition import JobDefinition
from jobservice.jobs.job import JobView
from jobservice.service.job_service import JobService


def job(
    batch_type: str, definition: str, target_pipe: str = "local:record", **fields: Any
) -> JobDefinition:
    return JobDefinition(
        batch_type=batch_type, batch_definition=definition, target_pipe=target_pipe, **fields
    )


API = "/job-service/v1"


@asynccontextmanager
async def api_client(
    app: FastAPI, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``app`` in this process, sending ``headers`` with every request."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers=headers
    ) as client:
        yield client


def job_body(items: int = 10, target: str = "local:record", **fields: Any) -> dict[str, Any]:
    """A PUT body: a BatchWorker task over the numbers 0 to ``items`` - 1."""
    return {
        "name": "numbers",
        "task": {
            "taskClassifier": "BatchWorker",
            "taskApiVersion": 1,
            "taskData": {
                "batchType": "range",
                "batchDefinition": f"0-{items}",
                "taskMessageType": "default",
                "targetPipe": target,
            },
            "taskPipe": "batch-worker",
            "targetPipe": target,
        },
        **fields,
    }


async def run_to_end(service: JobService, job_id: str, definition: JobDefinition) -> JobView:
    """Submit a job and wait (two minutes at most) for its terminal state."""
    await service.submit(job_id, definition)
    return await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 60, interval: float = 0.2
) -> None:
    """Wait until ``check`` holds; fail the test when it does not ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def workflow_runs(client: Client, partition: str, job_id: str) -> list[tuple[str, str]]:
    """(workflow id, status) of every run in a job's tree, closed ones included."""
    query = (
        f"WorkflowId = 'job/{partition}/{job_id}' OR "
        f"WorkflowId STARTS_WITH 'job/{partition}/{job_id}/'"
    )
    return [(w.id, w.status.name if w.status else "") async for w in client.list_workflows(query)]


async def closed_runs(client: Client, partition: str, job_id: str) -> list[tuple[str, str]]:
    """The runs of a finished job's tree, once Temporal's visibility store shows them closed."""
    runs: list[tuple[str, str]] = []

    async def all_closed() -> bool:
        nonlocal runs
        runs = await workflow_runs(client, partition, job_id)
        return bool(runs) and all(status != "RUNNING" for _, status in runs)

    await eventually(all_closed, within=30)
    return runs
