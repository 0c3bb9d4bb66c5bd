"""A job database of a benchmark's own: a scratch SQLite file at the current schema."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from jobservice.db.engine import create_database_engine
from jobservice.db.schema import upgrade
from jobservice.settings import DatabaseSettings


@contextmanager
def scratch_database() -> Iterator[DatabaseSettings]:
    """Settings of a fresh, migrated SQLite job database, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="jobservice-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'jobs.db'}"
        engine = create_database_engine(url)
        upgrade(engine)
        engine.dispose()
        yield DatabaseSettings(url=SecretStr(url))
