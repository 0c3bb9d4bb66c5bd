"""Publishing many messages in one socket write, with a publisher confirm for each.

aiormq writes every ``basic_publish`` to the socket on its own; on a machine where a system
call wakes another process (RabbitMQ) that is most of a message's cost. This module frames a
whole slice of messages (publish, header and body frames) and hands aiormq's writer one
payload for all of them, registering each message's confirmation the way ``basic_publish``
does, so that aiormq's own ack, nack and return handling settles them.

It reaches into aiormq's channel (its lock, delivery tags, confirmations and write queue), so
it is used only where those are what this module expects (:func:`can_frame`); anything else
publishes message by message through aio-pika.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import aiormq
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

_NEEDED = ("lock", "delivery_tag", "confirmations", "message_id_delivery_tag", "write_queue")


def can_frame(channel: object) -> TypeGuard[aiormq.Channel]:
    """Whether ``channel`` is an aiormq channel this module knows how to write to."""
    return (
        isinstance(channel, aiormq.Channel)
        and channel.publisher_confirms
        and all(hasattr(channel, name) for name in _NEEDED)
        and isinstance(getattr(channel, "max_content_size", None), int)
    )


async def publish_framed(
    channel: aiormq.Channel,
    routing_key: str,
    bodies: Sequence[bytes],
    headers: Mapping[str, Any] | None = None,
) -> list[asyncio.Future[Any]]:
    """Write persistent, mandatory publishes of ``bodies`` to ``routing_key`` in one payload;
    the futures settle as the broker confirms (or returns) each message."""
    frames: list[Any] = []
    futures: list[asyncio.Future[Any]] = []
    size = channel.max_content_size
    async with channel.lock:
        first_tag = channel.delivery_tag
        for body in bodies:
            channel.delivery_tag += 1
            tag = channel.delivery_tag
            message_id = uuid.uuid4().hex
            confirmation = channel.create_future()
            channel.confirmations[tag] = confirmation
            channel.message_id_delivery_tag[message_id] = tag
            confirmation.add_done_callback(
                functools.partial(_forget, channel.message_id_delivery_tag, message_id, tag)
            )
            futures.append(confirmation)
            frames.append(spec.Basic.Publish(routing_key=routing_key, mandatory=True))
            frames.append(
                ContentHeader(
                    properties=spec.Basic.Properties(
                        delivery_mode=2,
                        content_type="application/json",
                        headers=dict(headers) if headers else None,
                        message_id=message_id,
                    ),
                    body_size=len(body),
                )
            )
            frames.extend(ContentBody(body[i : i + size]) for i in range(0, len(body), size))
        try:
            await channel.write_queue.put(
                ChannelFrame.marshall(channel_number=channel.number, frames=frames)
            )
        except BaseException:
            # Nothing reached the broker: give the delivery tags back.
            for tag in range(first_tag + 1, channel.delivery_tag + 1):
                channel.confirmations.pop(tag, None)
            channel.delivery_tag = first_tag
            for future in futures:
                future.cancel()
            raise
    return futures


def _forget(ids: dict[str, int], message_id: str, tag: int, _: asyncio.Future[Any]) -> None:
    if ids.get(message_id) == tag:
        del ids[message_id]
