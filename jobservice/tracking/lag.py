"""How far the tracking consumers trail: the messages waiting on the tracking pipe, read now and
then, which is what an autoscaler of tracking consumers goes by."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aio_pika.abc import AbstractChannel

from jobservice.metrics import TRACKING_PIPE_MESSAGES, TRACKING_PIPE_READ
from jobservice.rabbitmq.broker import Broker, BrokerUnavailableError

_log = logging.getLogger(__name__)


async def watch_pipe_length(broker: Broker, stop: asyncio.Event, interval: float) -> None:
    """Every ``interval`` seconds until ``stop``, set the tracking pipe's gauge to the messages
        ready on it, and the time of the read to now. While the pipe cannot be read the length
        keeps its last value (an autoscaler going by it holds still) and the time stands still,
        which is what to alert on; a warning says so once (unless RabbitMQ is away, which the
    consumer says), and a line when it is read again."""
    pipe = broker.settings.tracking_pipe
    channel: AbstractChannel | None = None
    failing = False
    try:
        while not stop.is_set():
            try:
                if channel is None or channel.is_closed:
                    channel = await broker.channel()
                # On aiormq's channel: aio-pika's robust one answers a passive declare of a
                # queue it has declared from memory.
                underlay = await channel.get_underlay_channel()
                declared = await underlay.queue_declare(pipe, passive=True)
            except Exception as exc:  # read again next time, on a new channel if need be
                # RabbitMQ away: the tracking consumer says so already, once.
                if not failing and not isinstance(exc, BrokerUnavailableError):
                    _log.warning(
                        "cannot read the length of %s (%s); its gauge keeps its last value "
                        "until it can",
                        pipe,
                        str(exc) or type(exc).__name__,
                    )
                failing = True
            else:
                TRACKING_PIPE_MESSAGES.set(declared.message_count or 0)
                TRACKING_PIPE_READ.set_to_current_time()
                if failing:
                    _log.info("reading the length of %s again", pipe)
                failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()
