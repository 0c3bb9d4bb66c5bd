"""RabbitMQ: persistent publishing with a window of unconfirmed messages, and queue checks.

Connects lazily, so a process without a reachable broker still starts and runs local work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity, DeliveryError, PublishError

from jobservice.errors import InvalidJobError, JobServiceError
from jobservice.metrics import MESSAGES_PUBLISHED, PUBLISHER_CONFIRMS
from jobservice.rabbitmq.framing import can_frame, publish_framed
from jobservice.settings import RabbitSettings

_log = logging.getLogger(__name__)
_CONNECT_TIMEOUT = 5.0
LINK_ERRORS = (AMQPError, ConnectionError, OSError, TimeoutError, RuntimeError)
"""What a lost or reconnecting link to RabbitMQ raises (aio-pika's robust connection raises
RuntimeError for a channel asked of it while it reconnects)."""


class BrokerUnavailableError(JobServiceError):
    """RabbitMQ cannot be reached, or lost the connection more often than the retries allow."""


class TargetQueueMissingError(InvalidJobError):
    """The target queue does not exist and the settings say not to declare it."""


def _outcome(confirmation: asyncio.Future[Any]) -> BaseException | None:
    if confirmation.cancelled():
        return ConnectionError("the publish was cancelled with its channel")
    return confirmation.exception()


def _count_confirms(written: Sequence[BaseException | None], unsent: int) -> None:
    """Count what the broker answered for each message written, and the ``unsent`` ones there
    was no link to write: those were never published, so none of them is ``lost``."""
    PUBLISHER_CONFIRMS.labels("confirmed").inc(written.count(None))
    if unsent:
        PUBLISHER_CONFIRMS.labels("unsent").inc(unsent)
    for outcome in written:
        if outcome is None:
            continue
        if isinstance(outcome, PublishError):
            PUBLISHER_CONFIRMS.labels("returned").inc()
        elif isinstance(outcome, DeliveryError):
            PUBLISHER_CONFIRMS.labels("nacked").inc()
        else:
            PUBLISHER_CONFIRMS.labels("lost").inc()


def broker_host(settings: RabbitSettings) -> str:
    """Where the broker is, without credentials, for messages to people."""
    parts = urlsplit(settings.url.get_secret_value())
    return f"{parts.hostname}:{parts.port or 5672}"


class Broker:
    """One connection per process; a confirming channel for publishing."""

    def __init__(self, settings: RabbitSettings) -> None:
        self.settings = settings
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._known_queues: set[str] = set()
        self._lock = asyncio.Lock()

    async def connection(self) -> AbstractRobustConnection:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                try:
                    self._connection = await aio_pika.connect_robust(
                        self.settings.url.get_secret_value(), timeout=_CONNECT_TIMEOUT
                    )
                except (TimeoutError, OSError, AMQPError) as exc:
                    raise BrokerUnavailableError(
                        f"RabbitMQ at {broker_host(self.settings)} cannot be reached: "
                        f"{exc or type(exc).__name__}"
                    ) from None
            return self._connection

    async def channel(self, **options: Any) -> AbstractChannel:
        """A new channel; :class:`BrokerUnavailableError` while the broker is away."""
        connection = await self.connection()
        try:
            return await connection.channel(**options)
        except LINK_ERRORS as exc:
            raise BrokerUnavailableError(
                f"RabbitMQ at {broker_host(self.settings)} is not connected: "
                f"{exc or type(exc).__name__}"
            ) from None

    async def _publishing_channel(self) -> AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self.channel(publisher_confirms=True, on_return_raises=True)
        return self._channel

    async def ensure_queue(self, name: str, *, declare: bool | None = None) -> None:
        """Declare ``name`` (durable) when ``declare`` or the settings say so; otherwise refuse
        a missing one."""
        if name in self._known_queues:
            return
        if declare is None:
            declare = self.settings.declare_target_queues
        channel = await self.channel()
        try:
            await channel.declare_queue(name, durable=True, passive=not declare)
        except ChannelNotFoundEntity:
            raise TargetQueueMissingError(
                f"target queue {name!r} does not exist on RabbitMQ at "
                f"{broker_host(self.settings)}; create it, or set "
                "JOBSERVICE_RABBITMQ__DECLARE_TARGET_QUEUES=true"
            ) from None
        except LINK_ERRORS as exc:
            raise BrokerUnavailableError(
                f"RabbitMQ at {broker_host(self.settings)} lost the link while checking queue "
                f"{name!r}: {exc or type(exc).__name__}"
            ) from None
        finally:
            with contextlib.suppress(*LINK_ERRORS):
                await channel.close()
        self._known_queues.add(name)

    @contextlib.asynccontextmanager
    async def opened_channel(self) -> AsyncIterator[AbstractChannel]:
        """A new channel for a few calls, closed after them, quietly: a refused call (a
        passive declare of a missing queue, a delete refused) has closed it already."""
        channel = await self.channel()
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    def forget_queue(self, name: str) -> None:
        """``name`` was deleted: declare it again before the next use that declares."""
        self._known_queues.discard(name)

    async def publish(
        self,
        routing_key: str,
        bodies: Sequence[bytes],
        headers: Mapping[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> None:
        """Publish persistent messages (with the AMQP ``priority``, if given), each confirmed
        by the broker, ``publish_window`` at a time. A lost connection is retried for what was
        not confirmed; after ``publish_attempts`` it is a :class:`BrokerUnavailableError`. A
        message returned as unroutable means the queue has gone:
        :class:`TargetQueueMissingError`."""
        pending = list(bodies)
        for attempt in range(1, self.settings.publish_attempts + 1):
            outcomes, written = await self._publish_once(routing_key, pending, headers, priority)
            failed = [(b, o) for b, o in zip(pending, outcomes, strict=True) if o is not None]
            # The written messages come first; what follows them was never sent.
            _count_confirms(outcomes[:written], len(pending) - written)
            if not failed:
                return
            if any(isinstance(o, DeliveryError) for _, o in failed):
                self._known_queues.discard(routing_key)
                raise TargetQueueMissingError(
                    f"RabbitMQ returned messages for queue {routing_key!r} as unroutable; "
                    "the queue does not exist"
                )
            pending = [b for b, _ in failed]
            _log.warning(
                "publishing to %s: %d messages unconfirmed (%s); attempt %d of %d",
                routing_key,
                len(pending),
                failed[0][1],
                attempt,
                self.settings.publish_attempts,
            )
            self._channel = None
            await asyncio.sleep(min(2.0**attempt * 0.1, 5.0))
        raise BrokerUnavailableError(
            f"publishing to {routing_key!r} on RabbitMQ at {broker_host(self.settings)} failed "
            f"{self.settings.publish_attempts} times; {len(pending)} messages unconfirmed"
        )

    async def _publish_once(
        self,
        routing_key: str,
        bodies: list[bytes],
        headers: Mapping[str, Any] | None,
        priority: int | None,
    ) -> tuple[list[BaseException | None], int]:
        """Publish each body once; what became of each (None when confirmed), and how many,
        from the first, were written."""
        try:
            channel = await self._publishing_channel()
            underlay = await channel.get_underlay_channel()
        except (*LINK_ERRORS, BrokerUnavailableError) as exc:
            return [exc] * len(bodies), 0
        if can_frame(underlay):
            return await self._publish_framed(underlay, routing_key, bodies, headers, priority)
        window = asyncio.Semaphore(self.settings.publish_window)

        async def one(exchange: AbstractExchange, body: bytes) -> None:
            async with window:
                await exchange.publish(
                    aio_pika.Message(
                        body,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        content_type="application/json",
                        headers=dict(headers or {}),
                        priority=priority,
                    ),
                    routing_key,
                    mandatory=True,
                )

        exchange = channel.default_exchange
        MESSAGES_PUBLISHED.inc(len(bodies))
        outcomes = await asyncio.gather(*(one(exchange, b) for b in bodies), return_exceptions=True)
        return outcomes, len(bodies)

    async def _publish_framed(
        self,
        channel: aiormq.Channel,
        routing_key: str,
        bodies: list[bytes],
        headers: Mapping[str, Any] | None,
        priority: int | None,
    ) -> tuple[list[BaseException | None], int]:
        """Publish in slices of half the window, one socket write each, keeping at most a
        window of messages unconfirmed; what became of each, and how many were written."""
        step = max(1, self.settings.publish_window // 2)
        futures: list[asyncio.Future[Any]] = []
        unconfirmed: deque[list[asyncio.Future[Any]]] = deque()
        lost: BaseException | None = None
        for start in range(0, len(bodies), step):
            if len(unconfirmed) >= 2:
                await asyncio.wait(unconfirmed.popleft())
            try:
                written = await publish_framed(
                    channel, routing_key, bodies[start : start + step], headers, priority
                )
            except LINK_ERRORS as exc:
                lost = exc
                break
            MESSAGES_PUBLISHED.inc(len(written))
            unconfirmed.append(written)
            futures.extend(written)
        if futures:
            await asyncio.wait(futures)
        outcomes = [_outcome(f) for f in futures]
        return outcomes + [lost] * (len(bodies) - len(outcomes)), len(futures)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._channel = None
