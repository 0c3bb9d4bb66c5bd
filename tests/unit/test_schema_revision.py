"""The revision the job database is checked against is the newest migration's, and the check
reads what ``db upgrade`` wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from jobservice.db.engine import SCHEMA_REVISION, check_schema, create_database_engine
from jobservice.db.schema import head_revision, upgrade
from jobservice.errors import UnavailableError


def test_the_expected_revision_is_the_newest_migration() -> None:
    assert head_revision() == SCHEMA_REVISION


def test_a_database_is_refused_until_upgraded_and_again_at_another_revision(
    tmp_path: Path,
) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        with pytest.raises(UnavailableError, match="at schema revision none"):
            check_schema(engine)

        upgrade(engine)
        check_schema(engine)

        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'other'"))
        with pytest.raises(UnavailableError, match="at schema revision other, this version"):
            check_schema(engine)
    finally:
        engine.dispose()
