"""The probes behind ``/health`` and ``/readyz`` answer in bounded time, whatever is away."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from jobservice.db.engine import create_database_engine
from jobservice.service.probes import OK, probe, temporal_state


class _Serving:
    """A stand-in for Temporal's service client that says it serves."""

    async def check_health(self, **_: object) -> bool:
        return True


class _Refusing:
    async def check_health(self, **_: object) -> bool:
        raise ConnectionError("connection refused")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never says a word, as a host that has gone away
    behind a load balancer does."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


async def test_a_database_that_never_answers_is_unavailable_within_three_seconds(
    silent_port: int,
) -> None:
    # Given a job database whose host takes the connection but never answers
    engine = create_database_engine(f"postgresql+psycopg://jobservice@127.0.0.1:{silent_port}/x")
    try:
        # When the API probes it
        started = time.monotonic()
        probes = await asyncio.wait_for(probe(_Serving(), engine, None), 10)  # type: ignore[arg-type]
        elapsed = time.monotonic() - started
    finally:
        engine.dispose()

    # Then it answers at once that the database is unavailable, and Temporal is fine
    assert elapsed < 3.5
    assert probes.temporal == OK
    assert probes.database.startswith("unavailable: ")
    assert probes.problems() == [f"the job database is {probes.database}"]


async def test_temporal_state_says_why_temporal_is_unavailable() -> None:
    assert await temporal_state(_Serving()) == OK  # type: ignore[arg-type]
    assert await temporal_state(_Refusing()) == "unavailable: connection refused"  # type: ignore[arg-type]
