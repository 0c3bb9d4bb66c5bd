"""Keepers of paused pipes, several at once, against one pipe: each held result goes on once,
in the order it was held, and the pipe is removed once, when it is empty."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractChannel

from jobservice.db.gate import JobGate
from jobservice.db.paused import count_held
from jobservice.db.rows import CoreRows
from jobservice.db.store import JobStore
from jobservice.execution.job import NewJobRow
from jobservice.jobs.pipes import paused_pipe
from jobservice.jobs.status import JobStatus
from jobservice.rabbitmq.broker import Broker
from jobservice.settings import Settings
from jobservice.tracking.holding import TO_HEADER
from jobservice.tracking.paused import PausedPipes
from tests.conftest import unique
from tests.integration.rabbit import NewQueue, depth, take

HELD = 1_200
"""Two and a bit slices of the keeper's."""


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    broker = Broker(settings.rabbitmq)
    yield broker
    await broker.close()


def result(job_id: str, number: int) -> bytes:
    return json.dumps(
        {"taskStatus": "RESULT_SUCCESS", "tracking": {"jobTaskId": f"p:{job_id}.{number}"}}
    ).encode()


async def test_keepers_at_one_pipe_pass_each_result_on_once_in_order(
    settings: Settings,
    job_store: JobStore,
    broker: Broker,
    rabbit: AbstractChannel,
    owned_queues: list[str],
    new_queue: NewQueue,
) -> None:
    # Given a paused job whose pipe holds results (one of them twice) bound for stage B
    job_id = unique("kept")
    key = ("p", job_id)
    job_store.create(
        NewJobRow(partition_id="p", job_id=job_id, definition={}, definition_hash="0" * 64),
        status=JobStatus.PAUSED,
    )
    pipe, stage_b = paused_pipe(settings.rabbitmq.tracking_pipe, *key), await new_queue("stage-b")
    owned_queues.append(pipe)
    await broker.ensure_queue(pipe, declare=True)
    bodies = [result(job_id, n) for n in range(1, HELD + 1)] + [result(job_id, 7)]
    await broker.publish(pipe, bodies, headers={TO_HEADER: stage_b})
    count_held(job_store.engine, key, len(bodies))

    # When the job is resumed and three keepers settle at once, again and again
    job_store.set_status(partition_id="p", job_id=job_id, status=JobStatus.ACTIVE)
    dead_letters: list[tuple[bytes, str]] = []

    async def dead_letter(body: bytes, reason: str) -> None:
        dead_letters.append((body, reason))

    keepers = [
        PausedPipes(broker, job_store.engine, JobGate(job_store), dead_letter) for _ in range(3)
    ]
    for _ in range(3):
        await asyncio.gather(*(keeper.settle() for keeper in keepers))

    # Then stage B has each result once, in the order held, and the pipe and its count are gone
    messages = await take(rabbit, stage_b, HELD, within=10)
    numbers = [
        int(json.loads(m.body)["tracking"]["jobTaskId"].rpartition(".")[2]) for m in messages
    ]
    assert numbers == list(range(1, HELD + 1))
    assert await depth(rabbit, stage_b) == 0
    assert not dead_letters
    assert CoreRows(job_store.engine).paused_pipes([key]) == {}
    channel = await broker.channel()
    with pytest.raises(Exception, match="NOT_FOUND"):
        await channel.declare_queue(pipe, passive=True)
