"""A limit per target pipe: the capacity of the system behind it, shared fairly by every job
sending to it, changed while they run, and in force in jobs started before it was set."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from temporalio.worker import Worker

from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from tests.conftest import unique
from tests.integration.handlers import TimedHandler
from tests.integration.support import eventually, job
from tests.integration.test_steering import engine as engine

BOUND = 0.05
"""How far the pipe's rate may stray from its limit over a window of ten seconds."""
FAIR = 0.15
"""How far a job's part may stray from an equal share over ten seconds."""
PIPE = "local:timed"


@pytest.fixture
async def limited(service: JobService) -> AsyncIterator[str]:
    """The pipe the tests limit; its limit is taken away after each (the job database is the
    session's)."""
    yield PIPE
    await service.limit_pipe(PIPE, None)


def _within(counts: list[int], expected: float, bound: float) -> None:
    assert counts, "no full window was measured"
    worst = max(counts, key=lambda count: abs(count - expected))
    assert abs(worst - expected) <= bound * expected, f"{counts} against {expected:g}"


async def test_two_jobs_share_a_pipe_limit_fairly_and_it_changes_live(
    service: JobService, worker: Worker, timed: TimedHandler, limited: str
) -> None:
    # Given the pipe limited to 600 items a second, and a job sending to it alone
    state = await service.limit_pipe(limited, 600)
    assert state.rate_limit == 600
    first, second = unique("share-a"), unique("share-b")
    await service.submit(first, job("range", "0-60000/500", limited))
    await eventually(lambda: _sent(timed, 1500))

    # When a second job joins it, and they run side by side for a while
    await service.submit(second, job("range", "0-60000/500", limited))
    await eventually(lambda: _both_sending(timed, first, second))
    started = time.monotonic()
    await asyncio.sleep(13)

    # Then from two seconds on the pipe goes at 600 a second, within 5 % over every ten
    # seconds (the first job gave up what it had taken alone), and each job at half of it
    _within(timed.windows(10, started + 2, started + 13), 6000, BOUND)
    for job_id in (first, second):
        counts = timed.windows(10, started + 2, started + 13, job=f"default:{job_id}")
        _within(counts, 3000, FAIR)

    # And the pipe says so: its limit, its jobs and about its rate
    state = await service.pipe(limited)
    assert (state.rate_limit, state.jobs) == (600, 2)
    assert 400 <= state.recent_items_per_second <= 800

    # When the limit is lowered to 300 while they run
    lowered_at = time.monotonic()
    await service.limit_pipe(limited, 300)
    await asyncio.sleep(13)

    # Then within a few seconds the pipe goes at 300 a second (its batches gave up their
    # slots and took them again at their new shares)
    _within(timed.windows(10, lowered_at + 3, lowered_at + 13), 3000, BOUND)
    for job_id in (first, second):
        await service.cancel(job_id)
        assert (await service.get(job_id)).status is JobStatus.CANCELLED


async def test_a_running_job_keeps_to_a_limit_set_after_it_started(
    service: JobService, worker: Worker, timed: TimedHandler, limited: str
) -> None:
    # Given a job sending to a pipe with no limit, well under way
    job_id = unique("unlimited")
    await service.submit(job_id, job("range", "0-3000000/1000", limited))
    await eventually(lambda: _sent(timed, 5000))

    # When the pipe is limited to 400 items a second
    limited_at = time.monotonic()
    await service.limit_pipe(limited, 400)
    await asyncio.sleep(19)

    # Then once the word has gone down its tree and the chunks it sent unpaced are done (a
    # few seconds on a worker this busy), the job goes at 400 a second
    _within(timed.windows(10, limited_at + 8, limited_at + 19), 4000, BOUND)

    # And when the limit is taken away, it goes as fast as it can again
    freed_at = time.monotonic()
    await service.limit_pipe(limited, None)
    await asyncio.sleep(6)
    assert min(timed.windows(1, freed_at + 4, freed_at + 6)) > 800
    await service.cancel(job_id)


async def test_a_job_held_below_its_share_leaves_the_rest_to_the_other(
    service: JobService, worker: Worker, timed: TimedHandler, limited: str
) -> None:
    # Given the pipe limited to 600 a second, a job limited to 100 of its own, and another
    await service.limit_pipe(limited, 600)
    slow, fast = unique("own-limit"), unique("no-own-limit")
    await service.submit(slow, job("range", "0-60000/500", limited, rate_limit=100))
    await service.submit(fast, job("range", "0-60000/500", limited))
    await eventually(lambda: _both_sending(timed, slow, fast))
    started = time.monotonic()

    # When they run side by side
    await asyncio.sleep(16)

    # Then the first keeps to its own 100, and the other has the 500 left
    _within(timed.windows(10, started + 5, started + 16, job=f"default:{slow}"), 1000, FAIR)
    _within(timed.windows(10, started + 5, started + 16, job=f"default:{fast}"), 5000, FAIR)
    for job_id in (slow, fast):
        await service.cancel(job_id)


async def _both_sending(timed: TimedHandler, first: str, second: str) -> bool:
    return {f"default:{first}", f"default:{second}"} <= set(timed.jobs)


async def _sent(timed: TimedHandler, items: int) -> bool:
    return len(timed.times) >= items
