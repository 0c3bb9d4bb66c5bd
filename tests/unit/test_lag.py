"""Reading the tracking pipe's length: an outage is said once and shows in the time of the
last read, not only in a gauge that stands still."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from jobservice.broker import BrokerUnavailableError
from jobservice.lag import watch_pipe_length

_PIPE = "lag-test-tracking"


class _Channel:
    is_closed = False

    def __init__(self, broker: _Broker) -> None:
        self._broker = broker

    async def get_underlay_channel(self) -> _Channel:
        return self

    async def queue_declare(self, name: str, *, passive: bool) -> Any:
        assert (name, passive) == (_PIPE, True)
        self._broker.read.set()
        return SimpleNamespace(message_count=self._broker.length)

    async def close(self) -> None:
        pass


class _Broker:
    """A broker that is away until ``back`` is set, then has ``length`` messages waiting."""

    def __init__(self, length: int) -> None:
        self.settings = SimpleNamespace(tracking_pipe=_PIPE)
        self.length = length
        self.back = asyncio.Event()
        self.tried_thrice = asyncio.Event()
        self.read = asyncio.Event()
        self._tries = 0

    async def channel(self) -> _Channel:
        if not self.back.is_set():
            self._tries += 1
            if self._tries == 3:
                self.tried_thrice.set()
            raise BrokerUnavailableError("RabbitMQ at rabbit:5672 cannot be reached")
        return _Channel(self)


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_an_outage_is_warned_once_and_shows_in_the_time_of_the_last_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given RabbitMQ away for a few reads, then 7 messages waiting
    broker = _Broker(length=7)
    stop = asyncio.Event()
    before = _gauge("jobservice_tracking_pipe_read_timestamp_seconds")
    started = time.time()
    with caplog.at_level(logging.INFO, logger="jobservice.lag"):
        watching = asyncio.create_task(watch_pipe_length(broker, stop, 0.01))  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(broker.tried_thrice.wait(), 5)
            # While it is away the time of the last read stands still
            assert _gauge("jobservice_tracking_pipe_read_timestamp_seconds") == before
            broker.back.set()
            await asyncio.wait_for(broker.read.wait(), 5)
            await asyncio.sleep(0.05)
        finally:
            stop.set()
            await watching

    # Then the outage was warned of once, its end said once, and the read is timed
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot read the length of lag-test-tracking" in warnings[0].getMessage()
    assert "cannot be reached" in warnings[0].getMessage()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["reading the length of lag-test-tracking again"]
    assert _gauge("jobservice_tracking_pipe_messages") == 7
    read = _gauge("jobservice_tracking_pipe_read_timestamp_seconds")
    assert read is not None and read >= started
