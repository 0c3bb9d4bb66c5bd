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

from aiormq.abc import AbstractChannel, DeliveredMessage
from temporalio.client import Client

from jobservice.db.failures import FailureLedger
from jobservice.db.gate import JobGate
from jobservice.db.store import JobStore
from jobservice.metrics import TRACKING_DEAD_LETTERS
from jobservice.rabbitmq.broker import (
    LINK_ERRORS,
    Broker,
    BrokerUnavailableError,
    broker_host,
)
from jobservice.tracking.acks import Unacked
from jobservice.tracking.gathered import BatchReports, Delivery
from jobservice.tracking.holding import STATUS_SECONDS, Forwarding
from jobservice.tracking.lag import watch_pipe_length
from jobservice.tracking.paused import PausedPipes
from jobservice.tracking.recording import BatchRecorder, describe
from jobservice.tracking.redrives import RedriveRouting
from jobservice.tracking.reports import UnreadableError, read_reports, safe, with_reports

_log = logging.getLogger(__name__)

REASON_HEADER = "x-jobservice-reason"
_REASON_LIMIT = 1000
"""Most characters of a dead-letter reason: it goes in a header, which must fit one frame."""
_RECONNECT_FIRST_SECONDS = 0.5
_RECONNECT_SECONDS = 15.0
"""The longest wait between two tries to reach RabbitMQ again."""
_QUIET_SECONDS = 0.02
"""A burst of results is recorded once no more has come for this long."""


class TrackingConsumer:
    """Consumes the tracking pipe and records results in the jobs' workflows.

    It outlives any broker outage and any message: a lost link is reopened with backoff (said
    once when lost and once when back), and a message it cannot act on is dead-lettered. With
    ``lag_seconds``, it reads the length of its pipe that often, for the metrics."""

    def __init__(
        self,
        client: Client,
        broker: Broker,
        store: JobStore,
        *,
        lag_seconds: float | None = None,
    ) -> None:
        self._client = client
        self._broker = broker
        self._settings = broker.settings
        self._lag_seconds = lag_seconds
        gate = JobGate(store, ttl=STATUS_SECONDS)
        ledger = FailureLedger(store.engine)
        self._recorder = BatchRecorder(client, Forwarding(broker, gate, store.engine), ledger)
        self._redrives = RedriveRouting(gate, ledger)
        self._paused_pipes = PausedPipes(broker, store.engine, gate, self._dead_letter)
        self._pending: dict[str, BatchReports] = {}
        self._unacked = Unacked()
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
        failure, wait and connect again, for as long as it takes. Meanwhile keep the paused
        pipes, and with ``lag_seconds`` read the pipe's length."""
        beside = [asyncio.create_task(self._paused_pipes.run(stop))]
        if self._lag_seconds is not None:
            beside.append(
                asyncio.create_task(watch_pipe_length(self._broker, stop, self._lag_seconds))
            )
        try:
            await self._consume_until(stop)
        finally:
            for task in beside:
                task.cancel()
            await asyncio.gather(*beside, return_exceptions=True)

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
            _log.debug("tracking consumer still not reading: %s", describe(exc))
            return
        self._lost_at = asyncio.get_running_loop().time()
        if isinstance(exc, (BrokerUnavailableError, *LINK_ERRORS)):
            _log.warning(
                "tracking consumer cannot reach RabbitMQ at %s (%s); trying again, results "
                "wait on %s meanwhile",
                broker_host(self._settings),
                describe(exc),
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
        self._unacked = Unacked(channel)
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
            await self._dead_letter_quietly(message, f"could not be read: {describe(exc)}")
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
            _log.warning("could not dead-letter a tracking message yet: %s", describe(exc))

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
        routed = await self._redrives.route(pending)
        for batch_workflow, batch in routed.kept.items():
            self._keep(batch_workflow, batch)
        done = await asyncio.gather(
            *(self._record(w, b) for w, b in routed.pending.items()), return_exceptions=True
        )
        touched = routed.taken + [
            d for deliveries in done if isinstance(deliveries, list) for d in deliveries
        ]
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
        """Record a batch's reports; the messages behind them, or none when they are kept
        back to try again."""
        deliveries = await self._recorder.record(batch_workflow, batch)
        if deliveries is None:
            self._keep(batch_workflow, batch)
            return []
        return deliveries

    def _keep(self, batch_workflow: str, batch: BatchReports) -> None:
        kept = self._pending.setdefault(
            batch_workflow, BatchReports(batch.job_workflow, round=batch.round)
        )
        kept.take_back(batch)
        self._buffered += len(batch.reports)
