"""The reference worker on its own: what it does with tasks it cannot read or report."""

from __future__ import annotations

import asyncio
import json
import subprocess

from aio_pika.abc import AbstractChannel

from tests.conftest import unique
from tests.integration.rabbit import depth, publish, take


def _task(number: int, tracking_pipe: str) -> dict[str, object]:
    return {
        "version": 3,
        "taskId": f"p:j.1.{number}",
        "taskClassifier": "jobservice.item",
        "taskApiVersion": 1,
        "taskData": {"item": number},
        "taskStatus": "NEW_TASK",
        "context": {},
        "to": "documents",
        "tracking": {"jobTaskId": f"p:j.1.{number}", "trackingPipe": tracking_pipe},
    }


async def test_results_wait_for_their_tracking_queue_and_unreadable_tasks_are_dropped(
    rabbit: AbstractChannel,
    target_queue: str,
    owned_queues: list[str],
    reference_worker: subprocess.Popen[str],
) -> None:
    # Given tasks whose tracking queue does not exist yet, among messages that are no tasks
    tracking = unique("results")
    owned_queues.append(tracking)
    await publish(rabbit, target_queue, b"not json")
    for number in range(200):
        await publish(rabbit, target_queue, _task(number, tracking))
    await publish(rabbit, target_queue, {"taskId": "no tracking"})

    # When the worker has had time to try them: the broker returned every result, so every
    # task is back in the queue (or out at the worker, to be tried again), the others gone
    await asyncio.sleep(2)
    assert reference_worker.poll() is None

    # Then once the tracking queue exists, each task's result arrives there, once
    await rabbit.declare_queue(tracking, durable=True)
    results = await take(rabbit, tracking, 200)
    numbers = sorted(json.loads(m.body)["taskData"]["item"] for m in results)
    assert numbers == list(range(200))
    assert {json.loads(m.body)["taskStatus"] for m in results} == {"RESULT_SUCCESS"}
    await asyncio.sleep(1.5)  # a second retry would add results
    assert await depth(rabbit, tracking) == 0
    assert await depth(rabbit, target_queue) == 0
