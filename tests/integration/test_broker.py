"""Publishing to RabbitMQ: framed slices, each message confirmed, large bodies intact."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractChannel

from jobservice.rabbitmq.broker import Broker, TargetQueueMissingError
from jobservice.rabbitmq.framing import can_frame
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration.rabbit import take


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    broker = Broker(settings.rabbitmq.model_copy(update={"publish_window": 8}))
    yield broker
    await broker.close()


async def test_the_installed_aiormq_takes_framed_publishes(broker: Broker) -> None:
    # A newer aiormq whose channel no longer looks as expected would publish one by one:
    # still correct, but slower. This says so.
    channel = await (await broker.connection()).channel(publisher_confirms=True)
    assert can_frame(await channel.get_underlay_channel())
    await channel.close()


async def test_every_message_arrives_in_order_and_large_ones_whole(
    broker: Broker, rabbit: AbstractChannel, target_queue: str
) -> None:
    bodies = [f'{{"n": {n}}}'.encode() for n in range(50)]
    large = b'{"blob": "' + b"x" * 400_000 + b'"}'  # several frames at the broker's frame_max
    await broker.publish(target_queue, [*bodies, large], headers={"x-test": "yes"})

    messages = await take(rabbit, target_queue, 51)
    assert [m.body for m in messages] == [*bodies, large]
    assert all(m.delivery_mode == 2 and m.headers == {"x-test": "yes"} for m in messages)


async def test_a_queue_that_is_gone_is_named(broker: Broker) -> None:
    missing = unique("missing")
    with pytest.raises(TargetQueueMissingError, match=missing):
        await broker.publish(missing, [b"{}"] * 20)
