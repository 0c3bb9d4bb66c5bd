"""The tracking consumer: reads what external workers report on the tracking pipe.

Results are gathered per batch and signalled to the batch's workflow in one go, when a burst
of them ends, after ``report_batch`` results, or ``report_interval_seconds`` at the latest;
never one signal per item. A message
is acked only once its result is recorded in the workflow's history, so a consumer killed at
any point loses nothing: what it had not acked comes again, and the workflow counts an item
once however often its result arrives. A message it cannot read goes to the dead-letter queue
with the reason in the ``x-jobservice-reason`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiormq.abc import DeliveredMessage
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jobservice.broker import (
    LINK_ERRORS,
    Broker,
    BrokerUnavailableError,
    TargetQueueMissingError,
    broker_host,
)
from jobservice.execution import ITEMS_MEMO, TRACKING_SIGNAL, TrackingBatch
from jobservice.models import Failure
from jobservice.reports import MESSAGE_LIMIT, Report, UnreadableError, read_report, safe

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
_FAILURE_DETAILS = 20
"""Failure details one signal carries; the rest go as bare counts, to keep signals small."""


@dataclass
class _Batch:
    """Results waiting to be recorded for one batch workflow, and the messages behind them."""

    job_workflow: str
    reports: list[Report] = field(default_factory=list)
    messages: list[DeliveredMessage] = field(default_factory=list)

    def add(self, report: Report, message: DeliveredMessage) -> None:
        assert report.number is not None
        self.reports.append(report)
        self.messages.append(message)

    def signal(self) -> TrackingBatch:
        completed: list[int] = []
        failed: list[int] = []
        failures: list[Failure] = []
        for report in self.reports:
            assert report.number is not None
            if report.failure is None:
                completed.append(report.number)
                continue
            failed.append(report.number)
            if len(failures) < _FAILURE_DETAILS:
                failures.append(report.failure)
        return TrackingBatch(completed=completed, failed=failed, failures=failures)

    def forwards(self) -> dict[str, list[DeliveredMessage]]:
        """The messages to pass on, by the queue each names in ``to``."""
        by_queue: dict[str, list[DeliveredMessage]] = {}
        for report, message in zip(self.reports, self.messages, strict=True):
            if report.forward_to:
                by_queue.setdefault(report.forward_to, []).append(message)
        return by_queue

    def split_off(self, keep: Callable[[Report], bool]) -> list[tuple[Report, DeliveredMessage]]:
        """Keep the results ``keep`` accepts; return the others."""
        kept: list[tuple[Report, DeliveredMessage]] = []
        rest: list[tuple[Report, DeliveredMessage]] = []
        for pair in zip(self.reports, self.messages, strict=True):
            (kept if keep(pair[0]) else rest).append(pair)
        self.reports = [r for r, _ in kept]
        self.messages = [m for _, m in kept]
        return rest

    def take_back(self, earlier: _Batch) -> None:
        """Put the results of an earlier attempt in front of these."""
        self.reports[:0] = earlier.reports
        self.messages[:0] = earlier.messages


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
    once when lost and once when back), and a message it cannot act on is dead-lettered."""

    def __init__(self, client: Client, broker: Broker) -> None:
        self._client = client
        self._broker = broker
        self._settings = broker.settings
        self._pending: dict[str, _Batch] = {}
        self._numbers: dict[str, _Numbers] = {}
        self._unacked = _Unacked()
        self._buffered = 0
        self._arrived = asyncio.Event()
        self.counts: Counter[str] = Counter()
        self._lost_at: float | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; while RabbitMQ cannot be reached, or after any
        failure, wait and connect again, for as long as it takes."""
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
        self.counts["channels"] += 1
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
            report = read_report(message.body, self._settings.tracking_pipe)
        except UnreadableError as exc:
            await self._dead_letter_quietly(message, str(exc))
            return
        except Exception as exc:  # whatever else a message makes the reading raise
            await self._dead_letter_quietly(message, f"could not be read: {_describe(exc)}")
            return
        if report.number is None:
            self.counts["progress"] += 1
            await self._unacked.ack([message])
            return
        batch = self._pending.get(report.batch_workflow)
        if batch is None:
            batch = self._pending[report.batch_workflow] = _Batch(report.job_workflow)
        batch.add(report, message)
        self._buffered += 1
        self._arrived.set()

    async def _dead_letter_quietly(self, message: DeliveredMessage, reason: str) -> None:
        """Dead-letter from the delivery callback; while the broker is away the message stays
        unacked and comes again."""
        try:
            await self._dead_letter(message, reason)
        except Exception as exc:  # the message stays unacked and comes again on a new channel
            _log.warning("could not dead-letter a tracking message yet: %s", _describe(exc))

    async def _dead_letter(self, message: DeliveredMessage, reason: str) -> None:
        reason = safe(reason if len(reason) <= _REASON_LIMIT else reason[:_REASON_LIMIT] + "…")
        await self._broker.publish(
            self._settings.dead_letter_pipe, [message.body], headers={REASON_HEADER: reason}
        )
        await self._unacked.ack([message])
        self.counts["dead-lettered"] += 1
        _log.warning("dead-lettered a tracking message: %s", reason)

    async def flush(self) -> None:
        """Record every buffered result in its workflow; ack what was recorded."""
        pending, self._pending = self._pending, {}
        self._buffered = 0
        self._arrived.clear()
        done = await asyncio.gather(
            *(self._record(w, b) for w, b in pending.items()), return_exceptions=True
        )
        await self._unacked.ack(
            [m for messages in done if isinstance(messages, list) for m in messages]
        )
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # the link is gone: what was not acked comes again

    async def _record(self, batch_workflow: str, batch: _Batch) -> list[DeliveredMessage]:
        """Signal a batch's results; returns the messages it settled (none when kept back).
        Results for items the batch never sent are dead-lettered, each with its reason, and
        so are results Temporal will never take."""
        try:
            return await self._signal(batch_workflow, batch)
        except RPCError as exc:
            if exc.status not in _PERMANENT:
                self._keep(batch_workflow, batch)  # Temporal is busy or away: try again
                return []
            reason = f"Temporal refused the result: {exc.message}"
        except (BrokerUnavailableError, *LINK_ERRORS):
            raise
        except Exception as exc:  # whatever else these results make go wrong
            reason = f"could not be recorded: {_describe(exc)}"
        for message in batch.messages:
            await self._dead_letter(message, reason)
        return []

    async def _signal(self, batch_workflow: str, batch: _Batch) -> list[DeliveredMessage]:
        try:
            numbers = await self._numbers_of(batch_workflow)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return await self._no_batch(batch)
        if numbers is not None:
            await self._drop_outside(batch_workflow, batch, numbers)
        if not batch.messages:
            return []
        handle = self._client.get_workflow_handle(batch_workflow)
        try:
            await handle.signal(TRACKING_SIGNAL, batch.signal())
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            self.counts["discarded"] += len(batch.messages)  # the batch has ended: duplicates
            return batch.messages
        self.counts["recorded"] += len(batch.messages)
        return await self._forward(batch)

    async def _drop_outside(self, batch_workflow: str, batch: _Batch, numbers: _Numbers) -> None:
        """Dead-letter the results for numbers the batch never sent; a number outside what
        was cached is checked again first (a job deleted and submitted anew splits anew)."""
        if all(report.number in numbers for report in batch.reports):
            return
        self._numbers.pop(batch_workflow, None)
        numbers = await self._numbers_of(batch_workflow) or numbers
        for report, message in batch.split_off(lambda r: r.number in numbers):
            await self._dead_letter(message, _outside(report, numbers))

    async def _forward(self, batch: _Batch) -> list[DeliveredMessage]:
        """Pass results on to the queues their ``to`` names; one that cannot take them gets
        its messages dead-lettered. Returns the messages settled here."""
        settled = list(batch.messages)
        for queue, messages in batch.forwards().items():
            try:
                await self._broker.publish(queue, [m.body for m in messages])
            except TargetQueueMissingError as exc:
                for message in messages:
                    settled.remove(message)
                    await self._dead_letter(message, f"could not forward to {queue!r}: {exc}")
                continue
            self.counts["forwarded"] += len(messages)
        return settled

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

    async def _no_batch(self, batch: _Batch) -> list[DeliveredMessage]:
        """Results for a batch workflow that does not exist: of an unknown job, or naming a
        batch the job never had. All dead-lettered."""
        try:
            await self._client.get_workflow_handle(batch.job_workflow).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            reason = f"unknown job {batch.job_workflow!r}"
        else:
            task_id = batch.reports[0].task_id
            job, _, _ = task_id.partition(".")
            reason = f"job {job} has no batch {task_id.rpartition('.')[0]!r}"
        for message in batch.messages:
            await self._dead_letter(message, reason)
        return []

    def _keep(self, batch_workflow: str, batch: _Batch) -> None:
        kept = self._pending.setdefault(batch_workflow, _Batch(batch.job_workflow))
        kept.take_back(batch)
        self._buffered += len(batch.messages)


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
