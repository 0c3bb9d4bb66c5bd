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
import random
import struct
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import aiormq
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp import frame
from pamqp.header import ContentHeader

_ID_PLACEHOLDER = "0" * 32
"""Stands for a message id (32 hex digits) in a header frame's template."""
_BODY_SIZE_AT = 7 + 4
"""Where a header frame's body size starts: after the frame header and class and weight."""
_BODY_SIZE = struct.Struct(">Q")
_BODY_FRAME = struct.Struct(">BHI")
_BODY_TYPE = 3
_FRAME_END = b"\xce"
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
    priority: int | None = None,
) -> list[asyncio.Future[Any]]:
    """Write persistent, mandatory publishes of ``bodies`` to ``routing_key`` in one payload
    (with the AMQP ``priority``, if given); the futures settle as the broker confirms (or
    returns) each message."""
    template = _Template(channel.number, routing_key, headers, priority)
    size = channel.max_content_size
    parts: list[bytes] = []
    futures: list[asyncio.Future[Any]] = []
    async with channel.lock:
        first_tag = channel.delivery_tag
        for body in bodies:
            channel.delivery_tag += 1
            tag = channel.delivery_tag
            # As aiormq makes them; uuid4 reads the system's randomness, a system call each.
            message_id = f"{random.getrandbits(128):032x}"
            confirmation = channel.create_future()
            channel.confirmations[tag] = confirmation
            channel.message_id_delivery_tag[message_id] = tag
            confirmation.add_done_callback(
                functools.partial(_forget, channel.message_id_delivery_tag, message_id, tag)
            )
            futures.append(confirmation)
            template.frames(parts, body, message_id, size)
        try:
            await channel.write_queue.put(ChannelFrame(payload=b"".join(parts), should_close=False))
        except BaseException:
            # Nothing reached the broker: give the delivery tags back.
            for tag in range(first_tag + 1, channel.delivery_tag + 1):
                channel.confirmations.pop(tag, None)
            channel.delivery_tag = first_tag
            for future in futures:
                future.cancel()
            raise
    return futures


class _Template:
    """The frames of one slice's messages, marshalled once by pamqp and then filled in: the
    publish frame is the same for every message, the header frame differs in the body size
    and the message id only."""

    def __init__(
        self,
        channel: int,
        routing_key: str,
        headers: Mapping[str, Any] | None,
        priority: int | None = None,
    ):
        self._channel = channel
        self._publish = frame.marshal(
            spec.Basic.Publish(routing_key=routing_key, mandatory=True), channel
        )
        header = frame.marshal(
            ContentHeader(
                properties=spec.Basic.Properties(
                    delivery_mode=2,
                    content_type="application/json",
                    headers=dict(headers) if headers else None,
                    priority=priority,
                    message_id=_ID_PLACEHOLDER,
                ),
                body_size=0,
            ),
            channel,
        )
        at = header.rindex(_ID_PLACEHOLDER.encode())
        # type, channel, frame size, class, weight | body size (8 bytes) | flags, properties
        self._header_start = header[:_BODY_SIZE_AT]
        self._header_middle = header[_BODY_SIZE_AT + 8 : at]
        self._header_end = header[at + len(_ID_PLACEHOLDER) :]

    def frames(self, parts: list[bytes], body: bytes, message_id: str, size: int) -> None:
        """Append one message's frames to ``parts``; bodies longer than ``size`` are split."""
        parts += (
            self._publish,
            self._header_start,
            _BODY_SIZE.pack(len(body)),
            self._header_middle,
            message_id.encode(),
            self._header_end,
        )
        for start in range(0, len(body), size):
            chunk = body[start : start + size]
            parts += (_BODY_FRAME.pack(_BODY_TYPE, self._channel, len(chunk)), chunk, _FRAME_END)


def _forget(ids: dict[str, int], message_id: str, tag: int, _: asyncio.Future[Any]) -> None:
    if ids.get(message_id) == tag:
        del ids[message_id]
