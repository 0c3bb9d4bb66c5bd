"""A worker tells the job database the items its handlers have in hand while it has any,
and clears what it said once they are settled or it stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jobservice.activities.in_hand import ItemsInHand
from jobservice.db.engine import create_database_engine
from jobservice.db.rows import CoreRows
from jobservice.db.schema import upgrade
from jobservice.db.store import JobStore

JOB = ("p", "j")


def store_at(tmp_path: Path) -> JobStore:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade(engine)
    return JobStore(engine)


async def said(rows: CoreRows, expected: dict[tuple[str, str], int], within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (found := rows.items_in_hand([JOB])) != expected:
        assert loop.time() < deadline, f"{found} is not {expected} after {within} s"
        await asyncio.sleep(0.02)


async def test_items_in_hand_are_said_at_once_and_cleared_once_settled(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    rows = CoreRows(store.engine)
    in_hand = ItemsInHand(store, interval=0.2)

    # When two slices of a job are in a handler's hands
    with in_hand.holding(JOB), in_hand.holding(JOB):
        # Then the job database says so within moments
        await said(rows, {JOB: 2}, within=1.0)
    # And once both are settled, within an interval or two it says none
    await said(rows, {}, within=1.0)
    store.engine.dispose()


async def test_a_worker_that_stops_clears_what_it_said_at_once(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    rows = CoreRows(store.engine)
    in_hand = ItemsInHand(store, interval=60)  # its next write would be a minute away

    with in_hand.holding(JOB):
        await said(rows, {JOB: 1}, within=1.0)
    # When the worker stops, its last slice settled but the rows not yet cleared
    assert rows.items_in_hand([JOB]) == {JOB: 1}
    await in_hand.close()

    # Then the rows are gone at once, not when they go stale
    assert rows.items_in_hand([JOB]) == {}
    store.engine.dispose()
