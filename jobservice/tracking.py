"""The tracking consumer: reads what external workers report on the tracking pipe.

Reports (results, progress, and the reference worker framework's TrackingReportTasks, which
may speak of items of many batches) are gathered per batch and signalled to the batch's
workflow in one go, when a burst of them ends, after ``report_batch`` reports, or
``report_interval_seconds`` at the latest; never one signal per item. A message is acked only
once each of its reports is recorded in its workflow's history, so a consumer killed at any
point loses nothing: what it had not acked comes again, and the workflow counts an item once
however often its result arrives. A message it cannot read goes to the dead-letter queue with
the reason in the ``x-jobservice-reason`` header; of a TrackingReportTask whose other reports
were recorded, a copy with only the unusable ones goes there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass

from aiormq.abc import AbstractChannel, DeliveredMessage
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jobservice.execution.names import ITEMS_MEMO, TRACKING_SIGNAL
from jobservice.gathered import BatchReports, Delivery
from jobservice.lag import watch_pipe_length
from jobservice.metrics import (
    TRACKING_DEAD_LETTERS,
    TRACKING_ENDED_BATCH_REPORTS,
    TRACKING_FORWARDED,
    TRACKING_REPORTS,
)
from jobservice.rabbitmq.broker import (
    LINK_ERRORS,
    Broker,
    BrokerUnavailableError,
    TargetQueueMissingError,
    broker_host,
)
from jobservice.reports import (
    MESSAGE_LIMIT,
    Report,
    UnreadableError,
    read_reports,
    safe,
    with_reports,
)

_log = logging.getLogger(__name__)

REASON_HEADER = "x-jobservice-reason"
_REASON_LIMIT = 1000
"""Most characters of a dead-letter reason: it goes in a header, which must fit one frame."""
_PERMANENT = {RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION}
"""What Temporal answers for a signal it will never take, however often it is sent."""
_RECONNECT_FIRST_SECONDS = 0.5
_RECONNECT_SECONDS = 15.0
"""The longest wait between two tries to reach RabbitMQ again."""
_NUMBERS_CACHED = 16_384
_QUIET_SECONDS = 0.02
"""A burst of results is recorded once no more has come for this long."""


@dataclass(frozen=True)
class _Numbers:
    """The item numbers a batch sent to a queue: ``first`` to ``last``; none when empty."""

    first: int
    last: int

    def __contains__(self, number: object) -> bool:
        return isinstance(number, int) and self.first <= number <= self.last


class _Unacked:
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


class TrackingConsumer:
    """Consumes the tracking pipe and records results in the jobs' workflows.

    It outlives any broker outage and any message: a lost link is reopened with backoff (said
    once when lost and once when back), and a message it cannot act on is dead-lettered. With
    ``lag_seconds``, it reads the length of its pipe that often, for the metrics."""

    def __init__(self, client: Client, broker: Broker, *, lag_seconds: float | None = None) -> None:
        self._client = client
        self._broker = broker
        self._settings = broker.settings
        self._lag_seconds = lag_seconds
        self._pending: dict[str, BatchReports] = {}
        self._numbers: dict[str, _Numbers] = {}
        self._unacked = _Unacked()
        self._buffered = 0
        self._arrived = asyncio.Event()
        self._lost_at: float | None = None
        self._reading: AbstractChannel | None = None
        """aiormq's channel it consumes on, while it does."""

    async def not_reading(self) -> str | None:
        """A readiness check: None while the consumer reads the tracking pipe, else why not."""
        if self._reading is not None and not self._reading.is_closed:
            return None
        return (
            f"not consuming the tracking pipe {self._settings.tracking_pipe!r} on RabbitMQ at "
            f"{broker_host(self._settings)}"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; while RabbitMQ cannot be reached, or after any
        failure, wait and connect again, for as long as it takes. Meanwhile, with
        ``lag_seconds``, read the pipe's length."""
        watching = None
        if self._lag_seconds is not None:
            watching = asyncio.create_task(watch_pipe_length(self._broker, stop, self._lag_seconds))
        try:
            await self._consume_until(stop)
        finally:
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)

    async def _consume_until(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        delay = _RECONNECT_FIRST_SECONDS
        while not stop.is_set():
            started = loop.time()
            try:
                await self._consume(stop)
            except Exception as exc:  # the consumer never ends for a lost link or one message
                if loop.time() - started > _RECONNECT_SECONDS:
                    delay = _RECONNECT_FIRST_SECONDS  # it was reading a while: start over
                self._lost(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, _RECONNECT_SECONDS)

    def _lost(self, exc: Exception) -> None:
        """Say once that the consumer stopped reading, and why."""
        if self._lost_at is not None:
            _log.debug("tracking consumer still not reading: %s", _describe(exc))
            return
        self._lost_at = asyncio.get_running_loop().time()
        if isinstance(exc, (BrokerUnavailableError, *LINK_ERRORS)):
            _log.warning(
                "tracking consumer cannot reach RabbitMQ at %s (%s); trying again, results "
                "wait on %s meanwhile",
                broker_host(self._settings),
                _describe(exc),
                self._settings.tracking_pipe,
            )
        else:
            _log.exception("tracking consumer failed; starting over on a new channel")

    async def _consume(self, stop: asyncio.Event) -> None:
        """Consume on one channel until ``stop``, or until the channel is lost (the messages
        it had not acked come again on the next one)."""
        channel = await self._broker.channel()
        try:
            await channel.set_qos(prefetch_count=self._settings.report_batch * 2)
            await channel.declare_queue(self._settings.tracking_pipe, durable=True)
            await channel.declare_queue(self._settings.dead_letter_pipe, durable=True)
            # Straight on aiormq's channel: aio-pika's message objects cost more than the
            # rest of reading a result.
            underlay = await channel.get_underlay_channel()
            self._reset(underlay)
            consuming = await underlay.basic_consume(self._settings.tracking_pipe, self._on_message)
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._reading = underlay
        if self._lost_at is None:
            _log.info("tracking consumer reading %s", self._settings.tracking_pipe)
        else:
            _log.warning(
                "tracking consumer reading %s again, after %.0f s without RabbitMQ",
                self._settings.tracking_pipe,
                asyncio.get_running_loop().time() - self._lost_at,
            )
            self._lost_at = None
        try:
            while not stop.is_set() and not underlay.is_closed:
                await self._gather_burst()
                await self.flush()
        finally:
            self._reading = None
            with contextlib.suppress(Exception):
                await underlay.basic_cancel(consuming.consumer_tag or "")
            if stop.is_set():
                await self.flush()
            with contextlib.suppress(Exception):
                await channel.close()
        if not stop.is_set():
            raise BrokerUnavailableError("the tracking consumer's channel was closed")

    def _reset(self, channel: object) -> None:
        """Forget what came on a channel that is gone: all of it comes again."""
        self._pending = {}
        self._unacked = _Unacked(channel)
        self._buffered = 0
        self._arrived.clear()

    async def _gather_burst(self) -> None:
        """Wait for results, then for the burst they came in to end, within the interval."""
        loop = asyncio.get_running_loop()
        interval = self._settings.report_interval_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), interval)
        deadline = loop.time() + interval
        while self._arrived.is_set() and self._buffered < self._settings.report_batch:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._arrived.wait(), min(_QUIET_SECONDS, max(deadline - loop.time(), 0))
                )

    async def _on_message(self, message: DeliveredMessage) -> None:
        self._unacked.received(message)
        try:
            reading = read_reports(message.body, self._settings.tracking_pipe)
        except UnreadableError as exc:
            await self._dead_letter_quietly(message, str(exc))
            return
        except Exception as exc:  # whatever else a message makes the reading raise
            await self._dead_letter_quietly(message, f"could not be read: {_describe(exc)}")
            return
        delivery = Delivery.of(message, reading)
        if not reading.reports:  # a TrackingReportTask of no reports
            await self._unacked.ack([message])
            return
        for report in reading.reports:
            batch = self._pending.get(report.batch_workflow)
            if batch is None:
                batch = self._pending[report.batch_workflow] = BatchReports(report.job_workflow)
            batch.add(report, delivery)
        self._buffered += len(reading.reports)
        self._arrived.set()

    async def _dead_letter_quietly(self, message: DeliveredMessage, reason: str) -> None:
        """Dead-letter from the delivery callback; while the broker is away the message stays
        unacked and comes again."""
        try:
            await self._dead_letter(message.body, reason)
            await self._unacked.ack([message])
        except Exception as exc:  # the message stays unacked and comes again on a new channel
            _log.warning("could not dead-letter a tracking message yet: %s", _describe(exc))

    async def _dead_letter(self, body: bytes, reason: str) -> None:
        reason = safe(reason if len(reason) <= _REASON_LIMIT else reason[:_REASON_LIMIT] + "…")
        await self._broker.publish(
            self._settings.dead_letter_pipe, [body], headers={REASON_HEADER: reason}
        )
        TRACKING_DEAD_LETTERS.inc()
        _log.warning("dead-lettered a tracking message: %s", reason)

    async def flush(self) -> None:
        """Record every buffered report in its workflow; ack the messages whose reports are
        all recorded, and dead-letter what of them could not be."""
        pending, self._pending = self._pending, {}
        self._buffered = 0
        self._arrived.clear()
        done = await asyncio.gather(
            *(self._record(w, b) for w, b in pending.items()), return_exceptions=True
        )
        touched = [d for deliveries in done if isinstance(deliveries, list) for d in deliveries]
        await self._settle([d for d in dict.fromkeys(touched) if d.settled])
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # the link is gone: what was not acked comes again

    async def _settle(self, deliveries: list[Delivery]) -> None:
        """Ack messages whose every report is recorded or refused; dead-letter first what was
        refused: the message as it came, or, when some of its reports were recorded, a copy
        with only the others."""
        for delivery in deliveries:
            if not delivery.refused:
                continue
            body, reason = delivery.message.body, delivery.reason
            if delivery.partly_recorded:
                positions = sorted({p for p, _ in delivery.refused if p is not None})
                body, reason = with_reports(body, positions), delivery.reason_in(positions)
            await self._dead_letter(body, reason)
        await self._unacked.ack([d.message for d in deliveries])

    async def _record(self, batch_workflow: str, batch: BatchReports) -> list[Delivery]:
        """Signal a batch's reports; returns the messages behind them (none when kept back to
        try again), each report recorded or refused. Reports for items the batch never sent
        are refused, each with its reason, and so are reports Temporal will never take."""
        deliveries = list(batch.deliveries)
        try:
            await self._signal(batch_workflow, batch)
        except RPCError as exc:
            if exc.status not in _PERMANENT:
                self._keep(batch_workflow, batch)  # Temporal is busy or away: try again
                return []
            batch.refuse(f"Temporal refused the result: {exc.message}")
        except (BrokerUnavailableError, *LINK_ERRORS):
            raise
        except Exception as exc:  # whatever else these reports make go wrong
            batch.refuse(f"could not be recorded: {_describe(exc)}")
        return deliveries

    async def _signal(self, batch_workflow: str, batch: BatchReports) -> None:
        try:
            numbers = await self._numbers_of(batch_workflow)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await self._no_batch(batch)
            return
        if numbers is not None:
            await self._drop_outside(batch_workflow, batch, numbers)
        if not batch.reports:
            return
        handle = self._client.get_workflow_handle(batch_workflow)
        try:
            for signal in batch.signals():
                await handle.signal(TRACKING_SIGNAL, signal)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            TRACKING_ENDED_BATCH_REPORTS.inc(len(batch.reports))  # it has all it will take
            batch.recorded()
            return
        for status, count in Counter(report.status for report in batch.reports).items():
            TRACKING_REPORTS.labels(status.value).inc(count)
        await self._forward(batch)
        batch.recorded()

    async def _drop_outside(
        self, batch_workflow: str, batch: BatchReports, numbers: _Numbers
    ) -> None:
        """Refuse the reports for numbers the batch never sent; a number outside what was
        cached is checked again first (a job deleted and submitted anew splits anew)."""
        if all(report.number in numbers for report in batch.reports):
            return
        self._numbers.pop(batch_workflow, None)
        numbers = await self._numbers_of(batch_workflow) or numbers
        for report, delivery in batch.split_off(lambda r: r.number in numbers):
            delivery.refuse(report, _outside(report, numbers))

    async def _forward(self, batch: BatchReports) -> None:
        """Pass results on to the queues their ``to`` names; a result one cannot take is
        refused (it is counted all the same), to be passed on from the dead-letter queue by
        hand."""
        refused: set[int] = set()
        for queue, pairs in batch.forwards().items():
            try:
                await self._broker.publish(queue, [d.message.body for _, d in pairs])
            except TargetQueueMissingError as exc:
                for report, delivery in pairs:
                    delivery.refuse(report, f"could not forward to {queue!r}: {exc}")
                    refused.add(id(report))
                continue
            TRACKING_FORWARDED.inc(len(pairs))
        if refused:
            batch.split_off(lambda report: id(report) not in refused)

    async def _numbers_of(self, batch_workflow: str) -> _Numbers | None:
        """The item numbers a batch sent to a queue, as its workflow's memo says, cached; None
        before it has split, and for batches started before batches named them."""
        known = self._numbers.get(batch_workflow)
        if known is not None:
            return known
        description = await self._client.get_workflow_handle(batch_workflow).describe()
        memo = await description.memo_value(ITEMS_MEMO, None)
        if not (isinstance(memo, list) and len(memo) == 2):
            return None
        numbers = _Numbers(int(memo[0]), int(memo[1]))
        if len(self._numbers) >= _NUMBERS_CACHED:
            self._numbers.clear()
        self._numbers[batch_workflow] = numbers
        return numbers

    async def _no_batch(self, batch: BatchReports) -> None:
        """Reports for a batch workflow that does not exist: of an unknown job, or naming a
        batch the job never had. All refused."""
        try:
            await self._client.get_workflow_handle(batch.job_workflow).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            batch.refuse(f"unknown job {batch.job_workflow!r}")
            return
        task_id = batch.reports[0].task_id
        job, _, _ = task_id.partition(".")
        batch.refuse(f"job {job} has no batch {task_id.rpartition('.')[0]!r}")

    def _keep(self, batch_workflow: str, batch: BatchReports) -> None:
        kept = self._pending.setdefault(batch_workflow, BatchReports(batch.job_workflow))
        kept.take_back(batch)
        self._buffered += len(batch.reports)


def _outside(report: Report, numbers: _Numbers) -> str:
    batch = report.task_id.rpartition(".")[0]
    if numbers.last < numbers.first:
        return f"no item {report.number} in batch {batch!r}: it sent no items to a queue"
    return (
        f"no item {report.number} in batch {batch!r}: its items sent to a queue are numbered "
        f"{numbers.first} to {numbers.last}"
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:MESSAGE_LIMIT]}" if text else type(exc).__name__


def _delivery_tag(message: DeliveredMessage) -> int:
    return message.delivery_tag or 0


async def _ack(messages: list[DeliveredMessage], *, multiple: bool = False) -> None:
    for message in messages:
        # A message from a channel that has since closed will come again; the workflow
        # counts its item once.
        with contextlib.suppress(Exception):
            await message.channel.basic_ack(_delivery_tag(message), multiple=multiple)
