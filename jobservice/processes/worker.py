"""The worker: runs job and batch workflows and their activities on one task queue.

Run more worker processes on the same task queue to scale out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from jobservice.activities.batch import BatchActivities
from jobservice.activities.carrying_on import CarryingOnActivities
from jobservice.activities.handler_threads import HandlerThreads
from jobservice.activities.in_hand import ItemsInHand
from jobservice.activities.records import JobRecordActivities
from jobservice.activities.steering import SteeringActivities
from jobservice.activities.tree import TreeActivities
from jobservice.db.engine import create_database_engine
from jobservice.db.failures import FailureLedger
from jobservice.db.gate import JobGate
from jobservice.db.store import JobStore, open_store
from jobservice.plugins.registry import Registry, installed
from jobservice.rabbitmq.broker import Broker
from jobservice.service.job_service import JobService
from jobservice.service.probes import OK, temporal_state
from jobservice.settings import Settings, get_settings
from jobservice.tracking.consumer import TrackingConsumer
from jobservice.workflows.batch import BatchWorkflow
from jobservice.workflows.job import JobWorkflow

if TYPE_CHECKING:
    from jobservice.processes.monitor import Check, Readiness

_log = logging.getLogger(__name__)


def build_worker(
    client: Client,
    *,
    settings: Settings | None = None,
    task_queue: str | None = None,
    registry: Registry | None = None,
    broker: Broker | None = None,
    store: JobStore | None = None,
    in_hand: ItemsInHand | None = None,
) -> Worker:
    """A worker for ``task_queue`` (default: the setting), with the installed plugins, or with
    ``registry`` (``installed().extended(...)`` adds an application's own), publishing to
    queue target pipes through ``broker``."""
    settings = settings or get_settings()
    registry = registry or installed()
    store = store or JobStore(create_database_engine(settings.database_url()))
    threads = HandlerThreads(stuck_limit=settings.worker_stuck_handler_threads)
    activities = BatchActivities(
        registry,
        broker,
        JobGate(store),
        threads=threads,
        in_hand=in_hand or ItemsInHand(store),
        ledger=FailureLedger(store.engine),
    )
    records = JobRecordActivities(store, client)
    carrying_on = CarryingOnActivities(store.engine)
    steering = SteeringActivities(store)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal.task_queue,
        workflows=[JobWorkflow, BatchWorkflow],
        activities=[
            activities.split_batch,
            activities.dispatch_items,
            activities.count_failed_items,
            records.record_job,
            records.settle_prerequisites,
            records.notify_dependents,
            carrying_on.keep_checkpoint,
            carrying_on.load_checkpoint,
            carrying_on.number_round,
            steering.take_pace_slot,
            steering.take_pipe_slot,
            steering.steer_job,
            TreeActivities(client).tell_tree,
        ],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        workflow_runner=workflow_runner(),
        max_heartbeat_throttle_interval=timedelta(seconds=0.5),
        default_heartbeat_throttle_interval=timedelta(seconds=0.5),
        # Chunks hand their cursor back within half a second when the worker stops; most of the
        # grace is for the other activities, the rest for the process to close (see ``jobservice
        # worker``).
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace_seconds * 0.6),
    )


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox workflows run in: jobservice's own modules hold no mutable module state,
    so loading them once is safe."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("jobservice")
    )


async def run_worker(
    client: Client,
    stop: asyncio.Event,
    *,
    settings: Settings | None = None,
    tracking: bool = True,
    readiness: Readiness | None = None,
) -> None:
    """Run a worker, and unless told not to the tracking consumer, until ``stop`` is set; each
    adds to ``readiness`` what it must be doing for the process to be ready."""
    settings = settings or get_settings()
    store = await open_store(settings.database_url())
    broker = Broker(settings.rabbitmq)
    in_hand = ItemsInHand(store)
    worker = build_worker(client, settings=settings, broker=broker, store=store, in_hand=in_hand)
    consumer = (
        TrackingConsumer(client, broker, store, lag_seconds=settings.monitor.lag_interval_seconds)
        if tracking
        else None
    )
    if readiness is not None:
        readiness.add(polling(client, worker))
        if consumer is not None:
            readiness.add(consumer.not_reading)
    reconciler = asyncio.create_task(
        reconcile_jobs(JobService(client, store=store, settings=settings), stop)
    )
    try:
        async with worker:
            _log.info("worker serving task queue %s", worker.task_queue)
            if consumer is not None:
                await consumer.run(stop)
            else:
                await stop.wait()
    finally:
        reconciler.cancel()
        await asyncio.gather(reconciler, return_exceptions=True)
        await in_hand.close()
        await broker.close()
        store.engine.dispose()


def polling(client: Client, worker: Worker) -> Check:
    """A readiness check: the worker polls its task queue, and Temporal answers."""

    async def not_polling() -> str | None:
        if not worker.is_running:
            return f"the worker is not polling task queue {worker.task_queue!r}"
        state = await temporal_state(client.service_client)
        return None if state == OK else f"Temporal is {state}"

    return not_polling


async def reconcile_jobs(service: JobService, stop: asyncio.Event) -> None:
    """Every reconcile interval, repair jobs whose row and workflow disagree."""
    interval = service.settings.database.reconcile_interval_seconds
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        try:
            repaired = await service.reconcile()
        except Exception as exc:  # the next round tries again; the worker carries on
            _log.warning("reconciling jobs failed: %s", exc)
            continue
        if repaired:
            _log.info("reconciled %d jobs whose row and workflow disagreed", repaired)
