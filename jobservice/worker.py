"""The worker: runs job and batch workflows and their activities on one task queue.

Run more worker processes on the same task queue to scale out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from jobservice.activities import BatchActivities
from jobservice.registry import Registry, installed
from jobservice.settings import Settings, get_settings
from jobservice.workflows import BatchWorkflow, JobWorkflow

_log = logging.getLogger(__name__)


def build_worker(
    client: Client,
    *,
    settings: Settings | None = None,
    task_queue: str | None = None,
    registry: Registry | None = None,
) -> Worker:
    """A worker for ``task_queue`` (default: the setting), with the installed plugins, or with
    ``registry`` (``installed().extended(...)`` adds an application's own)."""
    settings = settings or get_settings()
    registry = registry or installed()
    activities = BatchActivities(registry)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal.task_queue,
        workflows=[JobWorkflow, BatchWorkflow],
        activities=[activities.split_batch, activities.dispatch_items],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        # jobservice's own modules hold no mutable module state; loading them once is safe.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("jobservice")
        ),
        max_heartbeat_throttle_interval=timedelta(seconds=0.5),
        default_heartbeat_throttle_interval=timedelta(seconds=0.5),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def run_worker(
    client: Client, stop: asyncio.Event, *, settings: Settings | None = None
) -> None:
    """Run a worker until ``stop`` is set, then shut it down cleanly."""
    worker = build_worker(client, settings=settings)
    async with worker:
        _log.info("worker serving task queue %s", worker.task_queue)
        await stop.wait()
