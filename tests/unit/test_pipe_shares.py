"""A pipe's limit is divided fairly among the jobs sending to it: equal shares, a job held
below its share by its own limit leaving the rest to the others; a job on a pipe with no
limit goes at its own rate, or at once. (Shares dealt in the job database, on SQLite and
PostgreSQL: ``tests/integration/test_pipe_shares_db.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from jobservice.db.engine import create_database_engine
from jobservice.db.pipes import fair_share, limit_of, pipe_states, set_limit, take_pipe_slot
from jobservice.db.schema import upgrade
from jobservice.execution.job import PipeSlot, PipeSlotRequest, PipeWord, job_pace

PIPE = "search-index"


@pytest.fixture
def database(tmp_path: Path) -> Engine:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'pipes.db'}")
    upgrade(engine)
    return engine


def _slot(engine: Engine, job_id: str, items: int = 10_000, rate: float | None = None) -> PipeSlot:
    request = PipeSlotRequest(
        pace=job_pace("p", job_id), pipe=PIPE, items=items, rate=rate, seconds=1.0
    )
    return take_pipe_slot(engine, request)


@pytest.mark.parametrize(
    ("limit", "others", "mine", "share"),
    [
        (600, [], None, 600),
        (600, [None], None, 300),
        (600, [None, None], None, 200),
        (600, [100], None, 500),  # the other keeps to its own 100
        (600, [None], 100, 100),  # mine is below my share
        (600, [None], 1000, 300),  # mine is above it
        (600, [100, 100], 100, 100),  # everyone is held below their share
        (1000, [50, None, None], None, 950 / 3),
    ],
)
def test_a_limit_is_shared_fairly(
    limit: float, others: list[float | None], mine: float | None, share: float
) -> None:
    assert fair_share(limit, others, mine) == pytest.approx(share)


def test_without_a_limit_a_job_goes_at_its_own_rate_or_at_once(database: Engine) -> None:
    own = _slot(database, "a", items=500, rate=200)
    free = _slot(database, "b", items=500)

    assert (own.rate, own.items) == (200, 200)
    assert (free.rate, free.items) == (None, 500)


def test_a_limit_is_kept_changed_and_taken_away(database: Engine) -> None:
    assert set_limit(database, PIPE, 100).epoch == 1
    assert set_limit(database, PIPE, 250).epoch == 2
    assert limit_of(database, PIPE) == 250
    assert [state.rate_limit for state in pipe_states(database)] == [250]

    assert set_limit(database, PIPE, None) == PipeWord()
    assert limit_of(database, PIPE) is None
    assert pipe_states(database) == []
