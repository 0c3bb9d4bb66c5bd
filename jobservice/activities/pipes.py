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

from jobservice.broker import Broker
from jobservice.errors import InvalidJobError
from jobservice.messages import ItemHandler, TaskMessage
from jobservice.models import LOCAL_PIPE_PREFIX, Failure
from jobservice.registry import Registry


@dataclass
class Delivery:
    """What became of a slice of messages: finished here, or handed on to a queue."""

    completed: int = 0
    failed: int = 0
    forwarded: int = 0
    failures: list[Failure] = field(default_factory=list)


class TargetPipe(Protocol):
    """Delivers task messages."""

    async def prepare(self) -> None:
        """Check, before the first delivery, that the pipe can take messages."""

    async def deliver(
        self, messages: Sequence[TaskMessage], params: Mapping[str, str], failure_limit: int
    ) -> Delivery: ...


class LocalPipe:
    """Runs an item handler on each message, in a worker thread of the worker process."""

    def __init__(self, name: str, handler: ItemHandler) -> None:
        self._source = f"item handler {LOCAL_PIPE_PREFIX}{name}"
        self._handler = handler

    async def prepare(self) -> None:
        return None

    async def deliver(
        self, messages: Sequence[TaskMessage], params: Mapping[str, str], failure_limit: int
    ) -> Delivery:
        return await asyncio.to_thread(self._handle, messages, params, failure_limit)

    def _handle(
        self, messages: Sequence[TaskMessage], params: Mapping[str, str], failure_limit: int
    ) -> Delivery:
        delivery = Delivery()
        handle = self._handler.handle
        for message in messages:
            try:
                handle(message, params)
            except Exception as exc:
                delivery.failed += 1
                if len(delivery.failures) < failure_limit:
                    delivery.failures.append(
                        Failure(
                            failure_id=message.job_task_id,
                            failure_time=datetime.now(UTC),
                            failure_source=self._source,
                            failure_message=f"{type(exc).__name__}: {exc}",
                        )
                    )
            else:
                delivery.completed += 1
        return delivery


class QueuePipe:
    """Publishes task messages to a RabbitMQ queue; results come back on the tracking pipe."""

    def __init__(self, queue: str, broker: Broker) -> None:
        self._queue = queue
        self._broker = broker

    async def prepare(self) -> None:
        # The tracking pipe exists before any task goes out, so no result finds it missing.
        await self._broker.ensure_queue(self._broker.settings.tracking_pipe, declare=True)
        await self._broker.ensure_queue(self._queue)

    async def deliver(
        self, messages: Sequence[TaskMessage], params: Mapping[str, str], failure_limit: int
    ) -> Delivery:
        tracking = self._broker.settings.tracking_pipe
        bodies = []
        for message in messages:
            message.tracking_pipe = tracking
            bodies.append(json.dumps(message.to_dict()).encode())
        await self._broker.publish(self._queue, bodies)
        return Delivery(forwarded=len(bodies))


def local_handler_name(target_pipe: str) -> str | None:
    """The handler a ``local:<name>`` pipe names; None for a queue."""
    if target_pipe.startswith(LOCAL_PIPE_PREFIX):
        return target_pipe[len(LOCAL_PIPE_PREFIX) :]
    return None


def resolve_pipe(target_pipe: str, registry: Registry, broker: Broker | None) -> TargetPipe:
    """The pipe for a job's ``targetPipe``; an unknown handler is an :class:`InvalidJobError`."""
    name = local_handler_name(target_pipe)
    if name is not None:
        return LocalPipe(name, registry.handler(name))
    if broker is None:
        raise InvalidJobError(f"targetPipe {target_pipe!r} is a queue; this worker has no broker")
    return QueuePipe(target_pipe, broker)
