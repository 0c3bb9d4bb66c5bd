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
import functools
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiormq.abc import DeliveredMessage
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jobservice.broker import Broker, BrokerUnavailableError
from jobservice.execution import TRACKING_SIGNAL, TrackingBatch
from jobservice.models import Failure
from jobservice.taskids import parse_job_task_id, split_item, workflow_id

_log = logging.getLogger(__name__)

REASON_HEADER = "x-jobservice-reason"
COMPLETING = {"RESULT_SUCCESS", "RESULT_FAILURE"}
FAILING = {"RESULT_EXCEPTION", "INVALID_TASK"}
_MESSAGE_LIMIT = 2000
_RECONNECT_SECONDS = 5.0
_QUIET_SECONDS = 0.02
_FAILURE_DETAILS = 20
"""Failure details one signal carries; the rest go as bare counts, to keep signals small."""
"""A burst of results is recorded once no more has come for this long."""


class UnreadableError(ValueError):
    """A tracking message that can never be recorded; its text is the dead-letter reason."""


@dataclass(frozen=True)
class Report:
    """What one tracking message says: a final result for item ``number`` of a batch (failed
    when ``failure`` is set), or, with no number, a progress report."""

    batch_workflow: str
    job_workflow: str
    number: int | None
    failure: Failure | None = None
    forward_to: str | None = None


def read_report(body: bytes, tracking_pipe: str) -> Report:
    """Parse a tracking message, or raise :class:`UnreadableError` saying why it cannot be."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise UnreadableError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise UnreadableError("not a JSON object")
    if "estimatedPercentageCompleted" in message:
        return _progress_report(message)
    tracking = message.get("tracking")
    task_id = tracking.get("jobTaskId") if isinstance(tracking, dict) else None
    if not isinstance(task_id, str):
        raise UnreadableError("no tracking.jobTaskId")
    status = message.get("taskStatus")
    if status not in COMPLETING | FAILING:
        raise UnreadableError(f"unknown taskStatus {status!r} for {task_id}")
    batch_workflow, job_workflow, number = _item_of(task_id)
    failure = None
    if status in FAILING:
        source = message.get("sourceInfo")
        name = source.get("name") if isinstance(source, dict) else None
        failure = Failure(
            failure_id=task_id,
            failure_time=datetime.now(UTC),
            failure_source=f"worker {name}" if isinstance(name, str) else "tracking pipe",
            failure_message=f"{status}: {_text(message.get('taskData'))}",
        )
    to = message.get("to")
    track_to = tracking.get("trackTo") if isinstance(tracking, dict) else None
    forward = isinstance(to, str) and to and to not in (tracking_pipe, track_to)
    return Report(
        batch_workflow=batch_workflow,
        job_workflow=job_workflow,
        number=number,
        failure=failure,
        forward_to=to if forward and isinstance(to, str) else None,
    )


def _progress_report(message: dict[str, Any]) -> Report:
    task_id = message.get("jobTaskId")
    percent = message.get("estimatedPercentageCompleted")
    if not isinstance(task_id, str):
        raise UnreadableError("a progress report without a jobTaskId")
    if not isinstance(percent, int | float) or not 0 <= percent <= 100:
        raise UnreadableError(f"estimatedPercentageCompleted {percent!r} is not 0 to 100")
    batch_workflow, job_workflow, _ = _item_of(task_id)
    return Report(batch_workflow, job_workflow, None)


def _item_of(task_id: str) -> tuple[str, str, int]:
    """The workflows of an item's batch and job, and its number in the batch."""
    item = split_item(task_id)
    if item is None:
        _task_path(task_id)  # raises, saying what is wrong with it
        raise UnreadableError(f"task id {task_id!r} does not end in an item number")
    batch, number = item
    return (*_workflows_of(batch), number)


@functools.lru_cache(maxsize=4096)
def _workflows_of(batch_task_id: str) -> tuple[str, str]:
    """The workflow ids of a batch and its job; the results of a batch share them."""
    try:
        partition, job_id, path = parse_job_task_id(batch_task_id)
    except ValueError as exc:
        raise UnreadableError(str(exc)) from None
    return workflow_id(partition, job_id, path), workflow_id(partition, job_id)


def _task_path(task_id: str) -> tuple[str, str, tuple[int, ...]]:
    try:
        partition, job_id, path = parse_job_task_id(task_id)
    except ValueError as exc:
        raise UnreadableError(str(exc)) from None
    if not path:
        raise UnreadableError(f"task id {task_id!r} names a job, not an item")
    return partition, job_id, path


def _text(data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "…"


@dataclass
class _Batch:
    """Results waiting to be recorded for one batch workflow, and the messages behind them."""

    job_workflow: str
    completed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    """Details of the first few failures only, to keep signals small."""
    messages: list[DeliveredMessage] = field(default_factory=list)
    forwards: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, report: Report, message: DeliveredMessage) -> None:
        assert report.number is not None
        if report.failure is None:
            self.completed.append(report.number)
        else:
            self.failed.append(report.number)
            if len(self.failures) < _FAILURE_DETAILS:
                self.failures.append(report.failure)
        self.messages.append(message)
        if report.forward_to:
            self.forwards.append((report.forward_to, message.body))

    def signal(self) -> TrackingBatch:
        return TrackingBatch(completed=self.completed, failed=self.failed, failures=self.failures)

    def take_back(self, earlier: _Batch) -> None:
        """Put the results of an earlier attempt in front of these."""
        self.completed[:0] = earlier.completed
        self.failed[:0] = earlier.failed
        self.failures[:0] = earlier.failures
        del self.failures[_FAILURE_DETAILS:]
        self.messages[:0] = earlier.messages
        self.forwards[:0] = earlier.forwards


class TrackingConsumer:
    """Consumes the tracking pipe and records results in the jobs' workflows."""

    def __init__(self, client: Client, broker: Broker) -> None:
        self._client = client
        self._broker = broker
        self._settings = broker.settings
        self._pending: dict[str, _Batch] = {}
        self._kept: dict[str, _Batch] = {}
        self._dead_lettering = 0
        self._buffered = 0
        self._arrived = asyncio.Event()
        self.counts: Counter[str] = Counter()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; wait for RabbitMQ when it cannot be reached."""
        said = False
        while not stop.is_set():
            try:
                await self._consume(stop)
            except BrokerUnavailableError as exc:
                if not said:
                    _log.warning("RabbitMQ target pipes are unavailable: %s", exc)
                    said = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _RECONNECT_SECONDS)

    async def _consume(self, stop: asyncio.Event) -> None:
        """Consume on one channel until ``stop``, or until the channel is lost (the messages
        it had not acked come again on the next one)."""
        connection = await self._broker.connection()
        channel = await connection.channel()
        try:
            await channel.set_qos(prefetch_count=self._settings.report_batch * 2)
            await channel.declare_queue(self._settings.tracking_pipe, durable=True)
            await channel.declare_queue(self._settings.dead_letter_pipe, durable=True)
            # Straight on aiormq's channel: aio-pika's message objects cost more than the
            # rest of reading a result.
            underlay = await channel.get_underlay_channel()
            consuming = await underlay.basic_consume(self._settings.tracking_pipe, self._on_message)
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        _log.info("tracking consumer reading %s", self._settings.tracking_pipe)
        try:
            while not stop.is_set() and not underlay.is_closed:
                await self._gather_burst()
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await underlay.basic_cancel(consuming.consumer_tag or "")
            await self.flush()
            with contextlib.suppress(Exception):
                await channel.close()
        if not stop.is_set():
            raise BrokerUnavailableError("the tracking consumer's channel was closed")

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
        try:
            report = read_report(message.body, self._settings.tracking_pipe)
        except UnreadableError as exc:
            await self._dead_letter(message, str(exc))
            return
        if report.number is None:
            self.counts["progress"] += 1
            await _ack([message])
            return
        batch = self._pending.get(report.batch_workflow)
        if batch is None:
            batch = self._pending[report.batch_workflow] = _Batch(report.job_workflow)
        batch.add(report, message)
        self._buffered += 1
        self._arrived.set()

    async def _dead_letter(self, message: DeliveredMessage, reason: str) -> None:
        self._dead_lettering += 1
        try:
            await self._broker.publish(
                self._settings.dead_letter_pipe, [message.body], headers={REASON_HEADER: reason}
            )
            await _ack([message])
        finally:
            self._dead_lettering -= 1
        self.counts["dead-lettered"] += 1
        _log.warning("dead-lettered a tracking message: %s", reason)

    async def flush(self) -> None:
        """Record every buffered result in its workflow; ack what was recorded."""
        pending, self._pending = self._pending, {}
        held_before = self._held
        self._kept = {}
        self._buffered = 0
        self._arrived.clear()
        done = await asyncio.gather(*(self._record(w, b) for w, b in pending.items()))
        settled = [m for messages in done for m in messages]
        if not settled:
            return
        if held_before == 0 and self._held == 0 and not self._dead_lettering:
            # Every earlier message is settled and later ones have later tags: one ack does.
            last = max(settled, key=_delivery_tag)
            await _ack([last], multiple=True)
        else:
            await _ack(settled)

    async def _record(self, batch_workflow: str, batch: _Batch) -> list[DeliveredMessage]:
        """Signal a batch's results; returns the messages it settled (none when kept back)."""
        handle = self._client.get_workflow_handle(batch_workflow)
        try:
            await handle.signal(TRACKING_SIGNAL, batch.signal())
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                self._keep(batch_workflow, batch)  # Temporal is busy or away: try again
                return []
            return await self._not_running(batch_workflow, batch)
        for queue, body in batch.forwards:
            await self._broker.publish(queue, [body])
        self.counts["recorded"] += len(batch.messages)
        self.counts["forwarded"] += len(batch.forwards)
        return batch.messages

    async def _not_running(self, batch_workflow: str, batch: _Batch) -> list[DeliveredMessage]:
        """Results for a batch that has ended: discarded for a known job, else dead-lettered."""
        try:
            await self._client.get_workflow_handle(batch.job_workflow).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                self._keep(batch_workflow, batch)
                return []
            for message in batch.messages:
                await self._dead_letter(message, f"unknown job {batch.job_workflow!r}")
            return []
        self.counts["discarded"] += len(batch.messages)
        return batch.messages

    @property
    def _held(self) -> int:
        """Messages kept back for another try, not yet acked."""
        return sum(len(batch.messages) for batch in self._kept.values())

    def _keep(self, batch_workflow: str, batch: _Batch) -> None:
        kept = self._pending.setdefault(batch_workflow, _Batch(batch.job_workflow))
        kept.take_back(batch)
        self._kept[batch_workflow] = kept
        self._buffered += len(batch.messages)


def _delivery_tag(message: DeliveredMessage) -> int:
    return message.delivery_tag or 0


async def _ack(messages: list[DeliveredMessage], *, multiple: bool = False) -> None:
    for message in messages:
        # A message from a channel that has since closed will come again; the workflow
        # counts its item once.
        with contextlib.suppress(Exception):
            await message.channel.basic_ack(_delivery_tag(message), multiple=multiple)
