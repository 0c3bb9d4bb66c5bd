"""RabbitMQ for integration tests: the broker the machine runs, queues each test owns."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from jobservice.settings import RabbitSettings
from tests.services import service_missing

NewQueue = Callable[[str], Awaitable[str]]
"""Makes a durable queue of the test's own, named from a prefix (the ``new_queue`` fixture);
deleted when the test ends."""


async def rabbit_connection(settings: RabbitSettings) -> AbstractRobustConnection:
    """A connection, or a failure when RabbitMQ is not running (a skip only with
    ``JOBSERVICE_TEST_ALLOW_SKIP=1``)."""
    try:
        return await aio_pika.connect_robust(settings.url.get_secret_value(), timeout=3)
    except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
        service_missing(f"RabbitMQ is not reachable: {exc}")


async def take(
    channel: AbstractChannel, queue: str, count: int, within: float = 30
) -> list[AbstractIncomingMessage]:
    """``count`` messages from ``queue``, unacked; fails when they do not come in time."""
    declared = await channel.declare_queue(queue, durable=True)
    messages: list[AbstractIncomingMessage] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(messages) < count:
        message = await declared.get(fail=False)
        if message is None:
            if loop.time() > deadline:
                raise AssertionError(f"{len(messages)} of {count} messages came from {queue}")
            await asyncio.sleep(0.05)
            continue
        messages.append(message)
    return messages


async def depth(channel: AbstractChannel, queue: str) -> int:
    """Messages ready in ``queue`` now (a robust channel's declare would answer from memory)."""
    underlay = await channel.get_underlay_channel()
    declared = await underlay.queue_declare(queue, passive=True)
    return declared.message_count or 0


async def publish(channel: AbstractChannel, queue: str, body: bytes | dict[str, object]) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    await channel.default_exchange.publish(aio_pika.Message(data), routing_key=queue)


async def delete_queues(channel: AbstractChannel, *names: str) -> None:
    for name in names:
        await channel.queue_delete(name)


def rabbitmqctl(*args: str) -> None:
    """Run ``rabbitmqctl`` on the machine's broker: ``stop_app``, ``start_app``."""
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)
