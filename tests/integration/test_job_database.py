"""The job database's schema: what the migrations make is what the code maps, and a database
at another revision is refused until `jobservice db upgrade` brings it up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import SecretStr
from sqlmodel import SQLModel

from jobservice.db import tables  # noqa: F401 - the tables the metadata holds
from jobservice.db.engine import check_schema, create_database_engine
from jobservice.errors import UnavailableError
from jobservice.settings import DatabaseSettings, Settings
from tests.integration import processes
from tests.integration.database import postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nothing has been migrated into yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    with postgres_schema() as url:
        yield url


async def test_db_upgrade_makes_the_schema_the_code_maps(
    settings: Settings, empty_database: str
) -> None:
    engine = create_database_engine(empty_database)
    try:
        # Given a database at no revision, everything that uses it refuses, naming the fix
        with pytest.raises(UnavailableError, match="run `jobservice db upgrade`"):
            check_schema(engine)
        own = settings.model_copy(
            update={"database": DatabaseSettings(url=SecretStr(empty_database))}
        )
        refused = await asyncio.to_thread(processes.run, own, ["list"])
        assert refused.returncode != 0
        assert "jobservice db upgrade" in refused.stderr

        # When the command upgrades it
        upgraded = await asyncio.to_thread(processes.run, own, ["db", "upgrade"])
        assert upgraded.returncode == 0, upgraded.stderr

        # Then it is accepted, and its tables are exactly what the code maps
        check_schema(engine)
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection), SQLModel.metadata
            )
        assert differences == []
    finally:
        engine.dispose()
