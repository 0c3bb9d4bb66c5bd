"""The shares of a limited pipe and the pace of its jobs, on SQLite and on PostgreSQL alike:
each statement is the dialect's own (``greatest`` or ``max``, ``RETURNING``, ``FILTER``)."""

from __future__ import annotations

import pytest

from jobservice.db.pace import take_slot
from jobservice.db.pipes import join, limit_of, pipe_states, set_limit, take_pipe_slot
from jobservice.db.store import JobStore
from jobservice.execution.job import PipeSlotRequest, PipeWord, job_pace
from tests.conftest import unique

pytestmark = pytest.mark.both_databases


def _request(pipe: str, job_id: str, rate: float | None = None) -> PipeSlotRequest:
    return PipeSlotRequest(
        pace=job_pace("p", job_id), pipe=pipe, items=10_000, rate=rate, seconds=1.0
    )


def test_jobs_share_a_pipe_and_keep_to_their_shares(job_store: JobStore) -> None:
    engine, pipe = job_store.engine, unique("pipe")
    first = set_limit(engine, pipe, 600)
    assert (first.limit, limit_of(engine, pipe)) == (600, 600)

    alone = take_pipe_slot(engine, _request(pipe, "a"))
    held = take_pipe_slot(engine, _request(pipe, "b", rate=100))
    after = take_pipe_slot(engine, _request(pipe, "a"))

    assert (alone.rate, alone.items) == (600, 600)
    assert (held.rate, held.items) == (100, 100)
    assert after.rate == 500  # what b leaves
    # a's 600 items taken alone are owed at its lower share: 1.2 s, not 1 s
    assert after.start == pytest.approx(alone.start + 1.2, abs=0.05)

    deal = join(engine, pipe, ("p", "c"), None)
    assert deal is not None
    assert deal.word == PipeWord(limit=600, epoch=first.epoch + 1)
    assert sorted(deal.users) == [("p", "a"), ("p", "b")]
    assert [state.rate_limit for state in pipe_states(engine, (pipe,), only=True)] == [600]
    assert set_limit(engine, pipe, None) == PipeWord()


def test_a_job_pace_owes_its_slots_in_items(job_store: JobStore) -> None:
    pace = job_pace("p", unique("paced"))
    given = take_slot(job_store.engine, pace, 1000, 1000)
    lower = take_slot(job_store.engine, pace, 100, 500)
    higher = take_slot(job_store.engine, pace, 1000, 1000)

    assert lower.start == pytest.approx(given.start + 2.0, abs=0.05)
    assert higher.start == pytest.approx(lower.start + 0.2, abs=0.05)
