"""The batch activities: split a batch with its plugin, and dispatch a chunk of its items.

A chunk is never passed in: the activity runs the plugin again and takes its slice of the
items, so only definitions and cursors cross Temporal. Plugins, builders and handlers are
synchronous code; they run in worker threads, a slice at a time, so that the activity can
heartbeat its cursor and notice a pause, while a slice is in hand as well as between slices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from jobservice.activities.building import MessageBuilding, RedriveBuilding
from jobservice.activities.counting import CountingServices, Enough
from jobservice.activities.handler_threads import HandlerThreads
from jobservice.activities.in_hand import ItemsInHand
from jobservice.activities.pacing import ChunkPace
from jobservice.activities.pipes import TargetPipe, resolve_pipe
from jobservice.activities.recorded import FailedItemsBuffer
from jobservice.db.failures import FailedItem, FailureLedger
from jobservice.db.gate import JobGate
from jobservice.errors import BatchDefinitionError, InvalidJobError
from jobservice.execution.batch import (
    ChunkInput,
    ChunkResult,
    FailedItemsInput,
    JobContext,
    SplitInput,
    SplitResult,
    SubBatch,
)
from jobservice.execution.names import (
    BROKER_UNAVAILABLE,
    COUNT_FAILED_ITEMS,
    DISPATCH_ITEMS,
    SPLIT_BATCH,
)
from jobservice.jobs.job import Failure
from jobservice.metrics import CHUNK_SECONDS, ITEMS
from jobservice.plugins.registry import Registry
from jobservice.rabbitmq.broker import Broker, BrokerUnavailableError, TargetQueueMissingError

T = TypeVar("T")

SLICE_ITEMS = 2000
"""Most items handed to the target pipe at a time, between heartbeats: milliseconds of quick
items, so that handing them to threads costs little beside them; slow ones make less."""

SLICE_SECONDS = 0.25
"""What a slice should take: slices shrink for slow handlers, so a pause lands quickly."""

REBUILD_ATTEMPTS = 5
"""Tries of the plugin to rebuild failed items' task messages before they are kept without."""

WATCH_SECONDS = 0.5
"""How often a chunk waiting for a long slice heartbeats and reads whether it must stop."""


_DEFINITION_ERRORS = (BatchDefinitionError, InvalidJobError, ValueError, TypeError, RecursionError)
"""What a plugin raises for a definition that can never work: not retried."""


def _definition_failure(context: JobContext, path: list[int], exc: Exception) -> ApplicationError:
    failure = Failure(
        failure_id=context.task_id(path),
        failure_time=datetime.now(UTC),
        failure_source=f"batch plugin {context.batch_type!r}",
        failure_message=str(exc) or type(exc).__name__,
    )
    return ApplicationError(
        failure.failure_message,
        failure.model_dump(mode="json", by_alias=True),
        type="BatchDefinitionError",
        non_retryable=True,
    )


def _pipe_failure(context: JobContext, path: list[int], exc: Exception) -> ApplicationError:
    failure = Failure(
        failure_id=context.task_id(path),
        failure_time=datetime.now(UTC),
        failure_source=f"target pipe {context.target_pipe!r}",
        failure_message=str(exc),
    )
    return ApplicationError(
        failure.failure_message,
        failure.model_dump(mode="json", by_alias=True),
        type="TargetPipeError",
        non_retryable=True,
    )


def _broker_unavailable(exc: BrokerUnavailableError) -> ApplicationError:
    # The batch waits and tries again itself, saying why in the job's status.
    return ApplicationError(str(exc), type=BROKER_UNAVAILABLE, non_retryable=True)


async def _beating(
    work: asyncio.Future[T],
    buffer: FailedItemsBuffer,
    stop: asyncio.Event | None = None,
    must_stop: Callable[[], Awaitable[bool]] | None = None,
) -> T:
    """Await a slice, heartbeating the cursor so far while it takes long (a broker that has
    gone away and is retried, a slow or stuck handler): the chunk is alive, not lost, and a
    cancellation reaches it. Once ``must_stop`` says so, ``stop`` is set: a local pipe stops
    after the handler call in hand, or leaves a stuck one behind. Cancelling the caller leaves
    ``work`` running, so that the slice in hand can still be reported."""
    while True:
        done, _ = await asyncio.wait({work}, timeout=WATCH_SECONDS)
        if done:
            return work.result()
        activity.heartbeat(buffer.durable.model_dump(mode="json"))
        if stop is not None and must_stop is not None and not stop.is_set() and await must_stop():
            stop.set()


async def _writing(buffer: FailedItemsBuffer) -> None:
    """Write the chunk's failed items, heartbeating meanwhile: the database may be slow to
    take them (another writer's lock), and the chunk is alive, not lost."""
    await _beating(asyncio.ensure_future(buffer.write()), buffer)


@dataclass
class _Slice:
    """What a slice did: its counts, every item that failed, and in a redrive the task ids of
    those that completed."""

    result: ChunkResult
    failed: list[FailedItem]
    completed: list[str]


def _count_items(target_pipe: str, step: ChunkResult) -> None:
    """Count a slice's items by what became of them."""
    for outcome, count in (
        ("completed", step.completed),
        ("failed", step.failed),
        ("forwarded", step.forwarded),
    ):
        if count:
            ITEMS.labels(outcome, target_pipe).inc(count)


class BatchActivities:
    """The activities that need plugins, builders and target pipes, injected here."""

    def __init__(
        self,
        registry: Registry,
        broker: Broker | None = None,
        gate: JobGate | None = None,
        *,
        threads: HandlerThreads,
        in_hand: ItemsInHand | None = None,
        ledger: FailureLedger | None = None,
    ) -> None:
        self._registry = registry
        self._ledger = ledger or FailureLedger(None)
        self._broker = broker
        self._gate = gate or JobGate(None)
        self._threads = threads
        self._in_hand = in_hand or ItemsInHand(None)
        self._building = asyncio.Semaphore(1)
        """Building task messages is pure Python: with one slice building at a time, the
        worker's event loop keeps its share of the interpreter under load, and so signals,
        queries and the job's row stay current."""

    def _run_plugin(self, context: JobContext, definition: str, services: CountingServices) -> None:
        plugin = self._registry.batch_plugin(context.batch_type)
        with contextlib.suppress(Enough):
            plugin.process_batch(
                services, definition, context.task_message_type, context.task_message_params
            )

    @activity.defn(name=SPLIT_BATCH)
    async def split_batch(self, request: SplitInput) -> SplitResult:
        """Count a batch's items and sub-batches, and return one page of sub-batch definitions.
        A redrive's batch holds the items its round sends again, and no sub-batches."""
        context = request.context
        if context.sends_failed_items:
            items = await self._ledger.size((context.partition, context.job_id), context.round)
            return SplitResult(sub_batches=[], sub_batch_total=0, item_total=items)
        services = CountingServices(
            sub_batch_start=request.sub_batch_offset,
            sub_batch_end=request.sub_batch_offset + request.sub_batch_limit,
        )
        try:
            return await asyncio.to_thread(self._split, request, services)
        except _DEFINITION_ERRORS as exc:
            raise _definition_failure(request.context, request.path, exc) from exc

    def _split(self, request: SplitInput, services: CountingServices) -> SplitResult:
        self._run_plugin(request.context, request.definition, services)
        plugin = self._registry.batch_plugin(request.context.batch_type)
        return SplitResult(
            sub_batches=[
                SubBatch(definition=d, estimate=plugin.estimate_items(d))
                for d in services.sub_batches
            ],
            sub_batch_total=services.sub_batch_count,
            item_total=services.item_count,
            estimate=plugin.estimate_items(request.definition)
            if request.sub_batch_offset == 0
            else None,
        )

    @activity.defn(name=COUNT_FAILED_ITEMS)
    async def count_failed_items(self, request: FailedItemsInput) -> None:
        """Write the items a batch counted failed to the ledger, each with its task message,
        built again from the batch's definition as a chunk builds it: the source is read now,
        moments after the item went out, not when it is sent again."""
        context = request.context
        if context.sends_failed_items:
            await self._settle_redriven(request)
            return
        indexes = sorted(set(request.reported) | set(request.expired))
        if not indexes:
            return
        services = CountingServices(
            item_start=indexes[0],
            item_end=indexes[-1] + 1,
            stop_after_items=True,
            only=set(indexes),
        )
        if activity.info().attempt <= REBUILD_ATTEMPTS:
            try:
                await asyncio.to_thread(self._run_plugin, context, request.definition, services)
            except _DEFINITION_ERRORS:
                services.items = []  # the source has gone bad since: no messages
        else:  # the plugin keeps failing: the failures are kept without their messages
            services.items = []
        building = MessageBuilding(self._registry, context, request.path, request.sub_batch_total)
        wanted = list(zip(indexes, services.items, strict=False))
        async with self._building:
            built = await asyncio.to_thread(building.build, wanted, 0)
        tracking = self._broker.settings.tracking_pipe if self._broker is not None else None
        messages: dict[int, str] = {}
        for index, message in zip(built.indexes, built.messages, strict=True):
            message.tracking_pipe = tracking
            messages[index] = json.dumps(message.to_dict(), default=str)
        items = dict(zip(built.refused.indexes, built.refused.items, strict=True))
        now = datetime.now(UTC)
        source = f"target pipe {context.target_pipe!r}"
        expired = set(request.expired)
        seconds = context.engine.result_timeout_seconds
        rows = [
            FailedItem(
                task_id=building.task_id(index),
                failure_time=now,
                failure_source=source,
                failure_message=f"no result for the item within {seconds:g} s"
                if index in expired
                else "its worker reported it failed",
                message=messages.get(index),
                item=items[index].item if index in items else None,
            )
            for index in indexes
        ]
        await self._ledger.count((context.partition, context.job_id), rows, round_=context.round)

    async def _settle_redriven(self, request: FailedItemsInput) -> None:
        """What became of a redrive's items sent to a queue, by their positions in its round:
        their messages are in the ledger already."""
        context = request.context
        seconds = context.engine.result_timeout_seconds
        await self._ledger.settle(
            (context.partition, context.job_id),
            context.round,
            completed=request.completed,
            failed=request.reported,
            expired=request.expired,
            expiry=(
                datetime.now(UTC),
                f"target pipe {context.target_pipe!r}",
                f"no result for the item within {seconds:g} s",
            ),
        )

    @activity.defn(name=DISPATCH_ITEMS)
    async def dispatch_items(self, request: ChunkInput) -> ChunkResult:
        """Deliver items ``[start, end)`` of a batch; stop early, with what is done, when cancelled.

        Heartbeats carry the result so far, so a retry after a crash resumes where it stopped.
        """
        with CHUNK_SECONDS.time():
            return await self._dispatch(request)

    async def _dispatch(self, request: ChunkInput) -> ChunkResult:
        context = request.context
        limit = context.engine.failure_details
        details = activity.info().heartbeat_details
        result = ChunkResult.model_validate(details[0]) if details else ChunkResult()
        if await self._gate.stopped(context.partition, context.job_id):
            return result.model_copy(update={"held": True})
        try:
            pipe = resolve_pipe(
                context.target_pipe,
                self._registry,
                self._broker,
                threads=self._threads,
                handler_time_limit=context.engine.handler_timeout_seconds,
                in_hand=self._in_hand,
                job=(context.partition, context.job_id),
                priority=request.amqp_priority,
            )
            await pipe.prepare()
            items = await self._items(request, request.start + result.processed)
        except TargetQueueMissingError as exc:
            raise _pipe_failure(context, request.path, exc) from exc
        except _DEFINITION_ERRORS as exc:
            raise _definition_failure(context, request.path, exc) from exc
        except BrokerUnavailableError as exc:
            raise _broker_unavailable(exc) from exc
        first = request.start + result.processed
        deadline = time.monotonic() + context.engine.chunk_time_budget_seconds
        done, size = 0, 1
        pace = ChunkPace(request.pace)

        async def must_stop() -> bool:
            return activity.is_worker_shutdown() or await self._gate.stopped(
                context.partition, context.job_id
            )

        buffer = FailedItemsBuffer(
            self._ledger, (context.partition, context.job_id), context.round, result
        )
        while done < len(items):
            try:
                await pace.until(first - request.start + done)
            except asyncio.CancelledError:
                await asyncio.shield(buffer.write())
                return result
            started = time.monotonic()
            stop = asyncio.Event()
            size = pace.slice_items(size)
            work = asyncio.ensure_future(self._slice(request, pipe, items, first, done, size, stop))
            try:
                outcome = await _beating(work, buffer, stop, must_stop)
            except asyncio.CancelledError:
                # Paused or cancelled: the slice in hand stops after the handler call it is in,
                # or leaves a stuck call behind with its item still to do; report it, stop.
                # Shielded: a second cancel (the worker's at shutdown) ends the activity, but
                # not the slice, which stop and the pipe's grace bound, and which accounts for
                # the call it leaves behind; nor what it failed reaching the ledger.
                stop.set()
                outcome = await asyncio.shield(work)
                _count_items(context.target_pipe, outcome.result)
                result = result.add(outcome.result, limit)
                buffer.add(result, outcome.failed, outcome.completed)
                await asyncio.shield(buffer.write())
                return result
            except TargetQueueMissingError as exc:
                raise _pipe_failure(context, request.path, exc) from exc
            except BrokerUnavailableError as exc:
                await _writing(buffer)
                if result.processed:
                    return result  # keep what was delivered; the rest waits for the broker
                raise _broker_unavailable(exc) from exc
            step = outcome.result
            _count_items(context.target_pipe, step)
            result = result.add(step, limit)
            done += step.processed
            buffer.add(result, outcome.failed, outcome.completed)
            if buffer.due:
                await _writing(buffer)
            activity.heartbeat(buffer.durable.model_dump(mode="json"))
            if activity.is_worker_shutdown():
                await _writing(buffer)
                return result  # the cursor goes back to the batch; another worker goes on
            if await self._gate.stopped(context.partition, context.job_id):
                await _writing(buffer)
                return result.model_copy(update={"held": True})
            if time.monotonic() > deadline or stop.is_set():
                break
            elapsed = max(time.monotonic() - started, 1e-6)
            size = max(1, min(SLICE_ITEMS, int(size * SLICE_SECONDS / elapsed), size * 4))
        await _writing(buffer)
        return result

    async def _items(self, request: ChunkInput, first: int) -> list[Any]:
        """The chunk's items from ``first``: the plugin's, or in a redrive the ledger's."""
        context = request.context
        if context.sends_failed_items:
            key = (context.partition, context.job_id)
            return await self._ledger.items(key, context.round, first, request.end)
        services = CountingServices(item_start=first, item_end=request.end, stop_after_items=True)
        await asyncio.to_thread(self._run_plugin, context, request.definition, services)
        return services.items

    async def _slice(
        self,
        request: ChunkInput,
        pipe: TargetPipe,
        items: list[Any],
        first: int,
        offset: int,
        size: int,
        stop: asyncio.Event,
    ) -> _Slice:
        """Build ``size`` task messages from ``offset`` and deliver them; once ``stop`` is set,
        the pipe may leave the rest of them undone."""
        context = request.context
        limit = context.engine.failure_details
        building: MessageBuilding | RedriveBuilding = (
            RedriveBuilding(self._registry, context)
            if context.sends_failed_items
            else MessageBuilding(self._registry, context, request.path, request.sub_batch_total)
        )
        todo = [
            (first + index, items[index]) for index in range(offset, min(offset + size, len(items)))
        ]
        async with self._building:
            built = await asyncio.to_thread(building.build, todo, limit)
        messages = built.messages
        delivered = await pipe.deliver(messages, context.task_message_params, limit, stop)
        end = min(offset + size, len(items))
        refused = built.refused
        if delivered.undone:
            # Processed ends at the first undone message's item: it and every item after it,
            # refused ones included, are done when the chunk goes on, and counted then.
            end = built.indexes[len(messages) - delivered.undone] - first
            refused = refused.before(first + end)
        failed = refused.items + delivered.failed_items
        completed: list[str] = []
        # A redrive's items that succeeded leave its failures; so, in a chunk tried again, do
        # items that failed on the try before and succeed now.
        if (context.sends_failed_items or activity.info().attempt > 1) and delivered.completed:
            gone = {item.task_id for item in failed}
            sent = messages[: len(messages) - delivered.undone]
            completed = [m.job_task_id for m in sent if m.job_task_id not in gone]
        counts = ChunkResult(
            processed=end - offset,
            completed=delivered.completed,
            failed=len(refused.indexes) + delivered.failed,
            forwarded=delivered.forwarded,
            refused=refused.indexes,
            failures=(refused.failures + delivered.failures)[:limit],
        )
        return _Slice(counts, failed, completed)
