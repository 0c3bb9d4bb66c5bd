"""Acking the tracking pipe's messages: one ack with ``multiple`` where it covers only
messages that are settled, one by one otherwise."""

from __future__ import annotations

import contextlib

from aiormq.abc import DeliveredMessage


class Unacked:
    """Delivery tags of one channel not yet acked, so that one ack with ``multiple`` is sent
    only when it covers no message still to be settled. Messages of an earlier channel are
    acked one by one (that fails quietly: they come again)."""

    def __init__(self, channel: object = None) -> None:
        self._channel = channel
        self._tags: set[int] = set()

    def received(self, message: DeliveredMessage) -> None:
        self._tags.add(_delivery_tag(message))

    async def ack(self, messages: list[DeliveredMessage]) -> None:
        earlier = [m for m in messages if m.channel is not self._channel]
        if earlier:
            await _ack(earlier)
            messages = [m for m in messages if m.channel is self._channel]
        if not messages:
            return
        tags = {_delivery_tag(m) for m in messages}
        last = max(messages, key=_delivery_tag)
        if all(t in tags for t in self._tags if t <= _delivery_tag(last)):
            self._tags.difference_update(t for t in list(self._tags) if t <= _delivery_tag(last))
            await _ack([last], multiple=True)
            return
        self._tags.difference_update(tags)
        await _ack(messages)


def _delivery_tag(message: DeliveredMessage) -> int:
    return message.delivery_tag or 0


async def _ack(messages: list[DeliveredMessage], *, multiple: bool = False) -> None:
    for message in messages:
        # A message from a channel that has since closed will come again; the workflow
        # counts its item once.
        with contextlib.suppress(Exception):
            await message.channel.basic_ack(_delivery_tag(message), multiple=multiple)
