"""What the publisher counts while RabbitMQ cannot be reached: messages it never wrote are
unsent, not lost, and not published."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from jobservice.processes.devserver import free_port
from jobservice.rabbitmq.broker import Broker, BrokerUnavailableError
from jobservice.settings import RabbitSettings


def _counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0


async def test_messages_with_no_link_to_write_them_on_are_counted_unsent_not_lost() -> None:
    # Given a broker at a port nothing listens on, tried twice per publish
    settings = RabbitSettings(
        url=SecretStr(f"amqp://guest:guest@127.0.0.1:{free_port()}/"), publish_attempts=2
    )
    broker = Broker(settings)
    before = {
        outcome: _counted("jobservice_publisher_confirms_total", outcome=outcome)
        for outcome in ("confirmed", "lost", "unsent")
    }
    published = _counted("jobservice_messages_published_total")

    # When three messages are published
    with pytest.raises(BrokerUnavailableError):
        await broker.publish("confirms-test-queue", [b"1", b"2", b"3"])
    await broker.close()

    # Then none was written, none is lost, and each attempt's three are unsent
    after = {
        outcome: _counted("jobservice_publisher_confirms_total", outcome=outcome)
        for outcome in before
    }
    assert after == {**before, "unsent": before["unsent"] + 6}
    assert _counted("jobservice_messages_published_total") == published
