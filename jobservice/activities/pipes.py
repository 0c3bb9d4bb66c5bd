"""Target pipes: where a chunk's task messages are delivered.

``local:<handler>`` runs an in-process item handler; any other name is a RabbitMQ queue, whose
items stay in flight until their results come back on the tracking pipe.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from jobservice.activities.handler_threads import HandlerThreads, Watch
from jobservice.activities.in_hand import ItemsInHand
from jobservice.db.failures import FailedItem
from jobservice.errors import InvalidJobError
from jobservice.jobs.job import Failure
from jobservice.jobs.pipes import LOCAL_PIPE_PREFIX, local_handler_name
from jobservice.messages import TaskMessage
from jobservice.plugin import ItemHandler
from jobservice.plugins.registry import Registry
from jobservice.rabbitmq.broker import Broker


@dataclass
class Delivery:
    """What became of a slice of messages: finished here, or handed on to a queue."""

    completed: int = 0
    failed: int = 0
    forwarded: int = 0
    failures: list[Failure] = field(default_factory=list)
    """The first few failures, for the job's summary."""
    failed_items: list[FailedItem] = field(default_factory=list)
    """Every item that failed here, with its task message, for the job's failed-item ledger."""
    undone: int = 0
    """Messages at the end of the slice left to do: the pipe was told to stop before them."""


class TargetPipe(Protocol):
    """Delivers task messages."""

    async def prepare(self) -> None:
        """Check, before the first delivery, that the pipe can take messages."""

    async def deliver(
        self,
        messages: Sequence[TaskMessage],
        params: Mapping[str, str],
        failure_limit: int,
        stop: asyncio.Event | None = None,
    ) -> Delivery:
        """Deliver ``messages``; once ``stop`` is set, the pipe may leave the rest undone."""
        ...


class LocalPipe:
    """Runs an item handler on each message, on the worker's pipe threads, each call within
    ``time_limit`` seconds: an item whose call takes longer fails, and the slice goes on.
    While a delivery runs, the one item whose call is in hand counts in ``in_hand`` for
    ``job`` (partition id, job id)."""

    def __init__(
        self,
        name: str,
        handler: ItemHandler,
        threads: HandlerThreads,
        time_limit: float,
        *,
        in_hand: ItemsInHand | None = None,
        job: tuple[str, str] = ("", ""),
    ) -> None:
        self._source = f"item handler {LOCAL_PIPE_PREFIX}{name}"
        self._handler = handler
        self._threads = threads
        self._time_limit = time_limit
        self._in_hand = in_hand or ItemsInHand(None)
        self._job = job

    async def prepare(self) -> None:
        return None

    async def deliver(
        self,
        messages: Sequence[TaskMessage],
        params: Mapping[str, str],
        failure_limit: int,
        stop: asyncio.Event | None = None,
    ) -> Delivery:
        if not messages:
            return Delivery()
        # The calls are made one at a time: one item in hand.
        with self._in_hand.holding(self._job):
            return await self._deliver(messages, params, failure_limit, stop)

    async def _deliver(
        self,
        messages: Sequence[TaskMessage],
        params: Mapping[str, str],
        failure_limit: int,
        stop: asyncio.Event | None,
    ) -> Delivery:
        delivery = Delivery()
        handle = self._handler.handle
        offset = 0
        while offset < len(messages):
            if stop is not None and stop.is_set():
                delivery.undone = len(messages) - offset
                return delivery
            crowded = self._threads.crowded(self._source)
            if crowded:
                text = (
                    f"{self._source} was not called: {crowded} of its calls are still running "
                    "past their time limit, and abandoned calls are at the most this worker "
                    f"keeps ({self._threads.stuck_limit})"
                )
                for rest in messages[offset:]:
                    self._failed(delivery, rest, text, failure_limit)
                return delivery
            todo = messages[offset:]
            run = self._threads.start(self._source, handle, todo, params)
            watched = await run.watch(self._time_limit, stop)
            returned, failures = run.results()
            for index, exc in failures:
                self._failed(delivery, todo[index], f"{type(exc).__name__}: {exc}", failure_limit)
            delivery.completed += returned - len(failures)
            offset += returned
            if watched is Watch.OVERRAN:
                text = (
                    f"{self._source} took longer than {self._time_limit:g} s; the item failed "
                    "and its call was left running (a job's handlerTimeoutSeconds sets the limit)"
                )
                self._failed(delivery, messages[offset], text, failure_limit)
                offset += 1
        return delivery

    def _failed(
        self, delivery: Delivery, message: TaskMessage, text: str, failure_limit: int
    ) -> None:
        delivery.failed += 1
        failure = Failure(
            failure_id=message.job_task_id,
            failure_time=datetime.now(UTC),
            failure_source=self._source,
            failure_message=text,
        )
        if len(delivery.failures) < failure_limit:
            delivery.failures.append(failure)
        delivery.failed_items.append(
            FailedItem.of(failure, message=json.dumps(message.to_dict(), default=str))
        )


class QueuePipe:
    """Publishes task messages to a RabbitMQ queue; results come back on the tracking pipe."""

    def __init__(self, queue: str, broker: Broker, priority: int | None = None) -> None:
        self._queue = queue
        self._broker = broker
        self._priority = priority

    async def prepare(self) -> None:
        # The tracking pipe exists before any task goes out, so no result finds it missing.
        await self._broker.ensure_queue(self._broker.settings.tracking_pipe, declare=True)
        await self._broker.ensure_queue(self._queue)

    async def deliver(
        self,
        messages: Sequence[TaskMessage],
        params: Mapping[str, str],
        failure_limit: int,
        stop: asyncio.Event | None = None,
    ) -> Delivery:
        # A publish in hand is finished: it is bounded by the broker's attempts.
        tracking = self._broker.settings.tracking_pipe
        bodies = []
        for message in messages:
            message.tracking_pipe = tracking
            bodies.append(message.to_json())
        await self._broker.publish(self._queue, bodies, priority=self._priority)
        return Delivery(forwarded=len(bodies))


def resolve_pipe(
    target_pipe: str,
    registry: Registry,
    broker: Broker | None,
    *,
    threads: HandlerThreads,
    handler_time_limit: float,
    in_hand: ItemsInHand | None = None,
    job: tuple[str, str] = ("", ""),
    priority: int | None = None,
) -> TargetPipe:
    """The pipe for a job's ``targetPipe``; an unknown handler is an :class:`InvalidJobError`.

    A local handler runs on ``threads``, each call within ``handler_time_limit`` seconds, the
    item in hand counted in ``in_hand`` for ``job``; a queue's messages are published with
    the AMQP ``priority``, if given.
    """
    name = local_handler_name(target_pipe)
    if name is not None:
        handler = registry.handler(name)
        return LocalPipe(name, handler, threads, handler_time_limit, in_hand=in_hand, job=job)
    if broker is None:
        raise InvalidJobError(f"targetPipe {target_pipe!r} is a queue; this worker has no broker")
    return QueuePipe(target_pipe, broker, priority)
