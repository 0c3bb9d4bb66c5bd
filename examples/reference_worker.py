"""A reference external worker: consumes a target pipe, reports results on the tracking pipe.

    python examples/reference_worker.py --queue documents [--url amqp://...] [--fail-every N]

It uses only the message contract (see README, "Writing an external worker") and aio-pika
(with the aiormq channel beneath it), so it translates line by line to a worker in any
language. (Where it can, it publishes with ``jobservice.rabbitmq.framing``, jobservice's own
publisher, which writes a batch of messages to the socket at once; that is speed, not
contract: one ``basic_publish`` per result does the same.)

1. take a task message from the target queue;
2. do the work (here: describe ``taskData``);
3. publish a message of the same envelope to ``tracking.trackingPipe``, with the same
   ``tracking`` object, ``taskStatus`` ``RESULT_SUCCESS`` (or ``RESULT_EXCEPTION`` with the
   error text as ``taskData``), and ``to`` naming where the result should go next, if anywhere;
4. ack the task only after the result is confirmed by the broker; a result the broker
   cannot route (no tracking queue) leaves the task to be delivered again.

It takes the tasks that have arrived as one batch: publishes their results together, waits
for the broker to confirm them, and acks the whole batch with one ``multiple`` ack. It runs
on uvloop where that is installed.

With ``--reports`` it reports as a worker of the reference worker framework does instead: a
``TrackingReportTask`` saying the batch's tasks are half done (``Progress``, 50 %), then one
saying each is ``Complete`` (or ``Failed``, with its failure details).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
import uuid
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import AMQPError, DeliveryError
from pamqp import commands as spec

from jobservice.rabbitmq.framing import can_frame, publish_framed


def result_of(task: dict[str, Any], fail_every: int) -> tuple[str, Any]:
    """The work: a status and the result data for one task message."""
    data = task.get("taskData")
    item = data.get("item") if isinstance(data, dict) else data
    if fail_every and isinstance(item, int) and item % fail_every == 0:
        return "RESULT_EXCEPTION", f"item {item} is a multiple of {fail_every}"
    return "RESULT_SUCCESS", {"item": item, "length": len(json.dumps(item))}


def result_message(task: dict[str, Any], status: str, data: Any, to: str | None) -> bytes:
    return json.dumps(
        {
            "version": task.get("version", 3),
            "taskId": task["taskId"],
            "taskClassifier": task.get("taskClassifier"),
            "taskApiVersion": task.get("taskApiVersion", 1),
            "taskData": data,
            "taskStatus": status,
            "context": task.get("context", {}),
            "to": to,
            "correlationId": task.get("correlationId"),
            "tracking": task["tracking"],
            "sourceInfo": {"name": "reference-worker", "version": "1"},
        }
    ).encode()


PERSISTENT = spec.Basic.Properties(delivery_mode=2, content_type="application/json")


def tracking_report(task: dict[str, Any], status: str, data: Any) -> dict[str, Any]:
    """The framework's report of one task: Complete, or Failed with what went wrong."""
    report: dict[str, Any] = {"jobTaskId": task["tracking"]["jobTaskId"]}
    if status == "RESULT_SUCCESS":
        return {**report, "status": "Complete", "estimatedPercentageCompleted": 100}
    failure = {
        "failureId": "WORKER_FAILED",
        "failureTime": int(time.time() * 1000),
        "failureSource": "reference-worker",
        "failureMessage": str(data),
    }
    return {**report, "status": "Failed", "failure": failure}


def report_task(reports: list[dict[str, Any]], pipe: str) -> bytes:
    """A TrackingReportTask message carrying ``reports`` to the tracking pipe ``pipe``."""
    return json.dumps(
        {
            "version": 3,
            "taskId": str(uuid.uuid4()),
            "taskClassifier": "TrackingReportTask",
            "taskApiVersion": 1,
            "taskData": {"trackingReports": reports},
            "taskStatus": "NEW_TASK",
            "context": {},
            "to": pipe,
            "sourceInfo": {"name": "reference-worker", "version": "1"},
        }
    ).encode()


def reports_of(
    batch: list[DeliveredMessage], fail_every: int
) -> tuple[dict[str, list[bytes]], list[DeliveredMessage]]:
    """The framework's reports of a batch, by tracking pipe: half done, then done; and the
    messages that are not tasks, which get none."""
    unreadable: list[DeliveredMessage] = []
    progress: dict[str, list[dict[str, Any]]] = {}
    final: dict[str, list[dict[str, Any]]] = {}
    for message in batch:
        try:
            task = json.loads(message.body)
            pipe = task["tracking"]["trackingPipe"]
            status, data = result_of(task, fail_every)
            job_task_id = task["tracking"]["jobTaskId"]
        except (ValueError, KeyError, TypeError, AttributeError):
            unreadable.append(message)
            continue
        half = {"jobTaskId": job_task_id, "status": "Progress", "estimatedPercentageCompleted": 50}
        progress.setdefault(pipe, []).append(half)
        final.setdefault(pipe, []).append(tracking_report(task, status, data))
    reports = {
        pipe: [report_task(progress[pipe], pipe), report_task(final[pipe], pipe)]
        for pipe in progress
    }
    return reports, unreadable


def result_for(message: DeliveredMessage, options: argparse.Namespace) -> tuple[str, bytes] | None:
    """Do one task: its tracking pipe and result message; ``None`` for a message that is not a
    task."""
    try:
        task = json.loads(message.body)
        status, data = result_of(task, options.fail_every)
        body = result_message(task, status, data, options.result_queue)
        return task["tracking"]["trackingPipe"], body
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


async def publish(
    channel: aiormq.abc.AbstractChannel, pipe: str, bodies: list[bytes]
) -> list[bool]:
    """Publish results to ``pipe``: whether the broker confirmed each. All in one socket write
    where jobservice's publisher can frame them, else one ``basic_publish`` each."""
    if can_frame(channel):
        confirmations = await publish_framed(channel, pipe, bodies)
        await asyncio.wait(confirmations)
        return [not c.cancelled() and c.exception() is None for c in confirmations]
    published = await asyncio.gather(
        *(
            channel.basic_publish(body, routing_key=pipe, properties=PERSISTENT, mandatory=True)
            for body in bodies
        ),
        return_exceptions=True,
    )
    for outcome in published:  # a lost channel ends the batch; the broker redelivers it
        if isinstance(outcome, BaseException) and not isinstance(outcome, DeliveryError):
            raise outcome
    return [not isinstance(outcome, BaseException) for outcome in published]


async def work_through(batch: list[DeliveredMessage], options: argparse.Namespace) -> None:
    """Report a batch of tasks, then settle them: one ack for all when every one is done; a
    task whose result the broker would not take is delivered again, one that is unreadable
    is rejected (and dead-lettered by the queue's policy, if it has one)."""
    channel = batch[-1].channel
    if options.reports:
        await report_through(channel, batch, options.fail_every)
        return
    results = [result_for(message, options) for message in batch]
    copies = 2 if options.duplicate else 1
    by_pipe: dict[str, list[tuple[int, bytes]]] = {}
    for at, result in enumerate(results):
        if result is not None:
            pipe, body = result
            by_pipe.setdefault(pipe, []).append((at, body))
    confirmed = [False] * len(batch)
    for pipe, entries in by_pipe.items():
        outcomes = await publish(
            channel, pipe, [body for _, body in entries for _ in range(copies)]
        )
        for n, (at, _) in enumerate(entries):
            confirmed[at] = all(outcomes[n * copies : (n + 1) * copies])
    if all(confirmed):
        await channel.basic_ack(batch[-1].delivery_tag or 0, multiple=True)
        return
    if not all(confirmed[at] for at, result in enumerate(results) if result is not None):
        await asyncio.sleep(1)
    for message, result, done in zip(batch, results, confirmed, strict=True):
        tag = message.delivery_tag or 0
        if done:
            await channel.basic_ack(tag)
        else:
            await channel.basic_reject(tag, requeue=result is not None)


async def report_through(
    channel: aiormq.abc.AbstractChannel, batch: list[DeliveredMessage], fail_every: int
) -> None:
    """Report a batch as the reference worker framework does, then settle it: one ack for all
    once the broker has taken every report; a message that is not a task is rejected (and
    dead-lettered by the queue's policy, if it has one), and a report the broker would not
    take leaves the rest of the batch to be delivered again."""
    reports, unreadable = reports_of(batch, fail_every)
    confirmed = True
    for pipe, bodies in reports.items():
        for body in bodies:  # the progress report before the completions
            confirmed = all(await publish(channel, pipe, [body])) and confirmed
    if not confirmed:
        await asyncio.sleep(1)
    if confirmed and not unreadable:
        await channel.basic_ack(batch[-1].delivery_tag or 0, multiple=True)
        return
    rejected = {id(message) for message in unreadable}
    for message in batch:
        tag = message.delivery_tag or 0
        if id(message) in rejected:
            await channel.basic_reject(tag, requeue=False)
        elif confirmed:
            await channel.basic_ack(tag)
        else:
            await channel.basic_reject(tag, requeue=True)


async def serve(
    connection: AbstractRobustConnection, options: argparse.Namespace, stop: asyncio.Event
) -> None:
    """Consume the queue on one channel until ``stop``, or until the channel is lost."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.set_qos(prefetch_count=options.prefetch)
    await channel.declare_queue(options.queue, durable=True)
    # aio-pika's channel runs on an aiormq one, whose plain messages are cheaper to handle.
    amqp = await channel.get_underlay_channel()
    arrived: list[DeliveredMessage] = []
    wake = asyncio.Event()

    async def on_message(message: DeliveredMessage) -> None:
        arrived.append(message)
        wake.set()

    async def work() -> None:
        while True:
            await wake.wait()
            wake.clear()
            while arrived:
                # A slow worker (--item-millis) does one task at a time, its result at once.
                taken = 1 if options.item_millis else len(arrived)
                batch = arrived[:taken]
                del arrived[:taken]
                if options.item_millis:
                    await asyncio.sleep(options.item_millis / 1000)
                await work_through(batch, options)

    await amqp.basic_consume(options.queue, on_message)
    worker = asyncio.create_task(work())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopped, amqp.closing], return_when=asyncio.FIRST_COMPLETED)
    finally:
        worker.cancel()
        stopped.cancel()
        with contextlib.suppress(Exception):
            await channel.close()


async def main(options: argparse.Namespace) -> None:
    connection = await aio_pika.connect_robust(options.url)
    async with connection:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"reference worker consuming {options.queue}", flush=True)
        while not stop.is_set():
            try:
                await serve(connection, options, stop)
            # The connection is being restored (aio-pika raises RuntimeError for a channel
            # asked of it meanwhile): start over on it.
            except (AMQPError, ConnectionError, RuntimeError) as exc:
                print(f"reference worker: {exc!r}; consuming again", flush=True)
                await asyncio.sleep(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", required=True, help="the target pipe to consume")
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--prefetch", type=int, default=500)
    parser.add_argument("--fail-every", type=int, default=0, help="fail items divisible by N")
    parser.add_argument("--result-queue", default=None, help="send results on to this queue")
    parser.add_argument("--duplicate", action="store_true", help="report every result twice")
    parser.add_argument(
        "--item-millis", type=int, default=0, help="take this long over each task, one at a time"
    )
    parser.add_argument(
        "--reports",
        action="store_true",
        help="report with TrackingReportTask messages, as the reference worker framework does "
        "(results are not sent on: --result-queue and --duplicate do not apply)",
    )
    options = parser.parse_args()
    try:
        import uvloop  # a faster event loop, where it is installed
    except ImportError:
        asyncio.run(main(options))
    else:
        uvloop.run(main(options))
