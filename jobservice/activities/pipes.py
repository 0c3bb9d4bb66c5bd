"""Target pipes: where a chunk's task messages are delivered.

``local:<handler>`` runs an in-process item handler. Other pipe names are broker queues,
delivered by a broker pipe when one is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

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
    """Delivers task messages. ``deliver`` runs in a worker thread."""

    def deliver(
        self, messages: Sequence[TaskMessage], params: Mapping[str, str], failure_limit: int
    ) -> Delivery: ...


class LocalPipe:
    """Runs an item handler on each message, in the worker process."""

    def __init__(self, name: str, handler: ItemHandler) -> None:
        self._source = f"item handler {LOCAL_PIPE_PREFIX}{name}"
        self._handler = handler

    def deliver(
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


def local_handler_name(target_pipe: str) -> str | None:
    """The handler a ``local:<name>`` pipe names; None for a queue."""
    if target_pipe.startswith(LOCAL_PIPE_PREFIX):
        return target_pipe[len(LOCAL_PIPE_PREFIX) :]
    return None


def resolve_pipe(target_pipe: str, registry: Registry) -> TargetPipe:
    """The pipe for a job's ``targetPipe``; an unknown one is an :class:`InvalidJobError`."""
    name = local_handler_name(target_pipe)
    if name is None:
        raise InvalidJobError(
            f"targetPipe {target_pipe!r} is a queue, and this worker has no broker pipe; "
            f"use local:<handler> (known handlers: {', '.join(sorted(registry.handlers))})"
        )
    return LocalPipe(name, registry.handler(name))
