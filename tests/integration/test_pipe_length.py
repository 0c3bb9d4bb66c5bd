"""Reading the tracking pipe's length, on the machine's RabbitMQ: a pipe that cannot be read is
said once and shows in the time of the last read, not only in a gauge that stands still."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import REGISTRY

from jobservice.rabbitmq.broker import Broker
from jobservice.settings import RabbitSettings
from jobservice.tracking.lag import watch_pipe_length
from tests.conftest import unique
from tests.integration.rabbit import delete_queues, publish, rabbit_connection
from tests.integration.support import eventually

READ_AT = "jobservice_tracking_pipe_read_timestamp_seconds"
LENGTH = "jobservice_tracking_pipe_messages"


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_a_pipe_that_cannot_be_read_is_warned_of_once_and_its_read_time_stands_still(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a tracking pipe that does not exist yet
    pipe = unique("lag-tracking")
    broker = Broker(RabbitSettings(tracking_pipe=pipe))
    connection = await rabbit_connection(RabbitSettings())
    stop = asyncio.Event()
    before = _gauge(READ_AT)
    started = time.time()
    try:
        with caplog.at_level(logging.INFO, logger="jobservice.tracking.lag"):
            watching = asyncio.create_task(watch_pipe_length(broker, stop, 0.05))
            try:
                # When it has been tried a few times
                await asyncio.sleep(0.5)
                # Then the time of the last read stands still
                assert _gauge(READ_AT) == before

                # When the pipe comes, with 3 messages on it
                channel = await connection.channel()
                await channel.declare_queue(pipe, durable=True)
                for number in range(3):
                    await publish(channel, pipe, {"n": number})

                # Then its length is read, and when
                async def read() -> bool:
                    return _gauge(LENGTH) == 3 and (_gauge(READ_AT) or 0) >= started

                await eventually(read, within=10, interval=0.05)
            finally:
                stop.set()
                await watching
        await delete_queues(channel, pipe)
    finally:
        await connection.close()
        await broker.close()

    # and the pipe that could not be read was warned of once, its end said once
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"cannot read the length of {pipe}" in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [f"reading the length of {pipe} again"]
