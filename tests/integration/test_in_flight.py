"""A job's ``inFlight`` counts the items being handled now: those an item handler has in hand,
and those published to a queue and not yet settled. Items of chunks that are scheduled but
wait for a worker's slot are waiting, however many chunks the tree has out."""

from __future__ import annotations

import pytest
from temporalio.worker import Worker

from jobservice.db.rows import CoreRows
from jobservice.db.store import JobStore
from jobservice.jobs.status import DEFAULT_PARTITION, JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings, Settings
from tests.conftest import unique
from tests.integration.support import eventually, job

SLOW = {"sleepMillis": "2"}


@pytest.fixture
def engine() -> EngineSettings:
    """Up to 6 batches x 4 chunks x 250 items = 6,000 items in scheduled chunks at once,
    for a worker with 8 activity slots."""
    return EngineSettings(
        chunk_size=250,
        batch_window=6,
        chunk_window=4,
        progress_interval_seconds=0.2,
        heartbeat_timeout_seconds=2.0,
    )


async def test_in_flight_is_what_the_handlers_have_in_hand_not_what_the_chunks_hold(
    service: JobService, worker: Worker, settings: Settings, job_store: JobStore
) -> None:
    # Given a local job of 30 batches of 1,000 items, 2 ms each: far more items sit in
    # scheduled chunks than the worker's slots can hand to its handler at once
    job_id = unique("inflight")
    slots = settings.worker_max_concurrent_activities
    await service.submit(job_id, job("range", "0-30000/1000", "local:sleep", **params()))

    # When it runs, sampled a few times a second
    samples: list[int] = []

    async def sampled_enough() -> bool:
        view = await service.get(job_id)
        assert not view.status.is_terminal, view
        samples.append(view.counts.in_flight)
        return len(samples) >= 20 and view.counts.done > 2000

    await eventually(sampled_enough, within=60, interval=0.2)

    # Then in flight never passes one item per running chunk, the worker's slots, and it is
    # not nothing while the handler works
    print(f"in flight {samples}")
    assert max(samples) <= slots, samples
    assert max(samples) > 0, samples
    # And the rest of what is to do is waiting
    view = await service.get(job_id)
    assert view.counts.total - view.counts.done - view.counts.in_flight > 10 * slots

    # When it ends, nothing is in flight, and the worker's rows of it are gone
    done = await service.wait(job_id, interval=0.2)
    assert done.status is JobStatus.COMPLETED and done.counts.completed == 30000
    rows = CoreRows(job_store.engine)

    async def cleared() -> bool:
        return rows.items_in_hand([(DEFAULT_PARTITION, job_id)]) == {}

    await eventually(cleared, within=5, interval=0.2)


def params() -> dict[str, object]:
    return {"task_message_params": SLOW}
