"""Which job database URLs ``status`` reads with Python's own sqlite3, and what it says of a
SQLite file that is not a job database of this version."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobservice.db.engine import create_database_engine
from jobservice.db.rows import SqliteRows, sqlite_file
from jobservice.db.schema import upgrade
from jobservice.errors import UnavailableError


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///jobs.db", "jobs.db"),
        ("sqlite:////var/lib/jobs/jobs.db", "/var/lib/jobs/jobs.db"),
        ("sqlite+pysqlite:///.jobservice/jobs.db", ".jobservice/jobs.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///jobs.db?mode=ro", None),
        ("sqlite:///my%20jobs.db", None),
        ("sqlite+aiosqlite:///jobs.db", None),
        ("postgresql+psycopg://localhost/test", None),
    ],
)
def test_plain_sqlite_files_are_read_with_sqlite3(url: str, path: str | None) -> None:
    assert sqlite_file(url) == path


def test_a_missing_or_unmigrated_file_asks_for_an_upgrade_and_is_not_made(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    with pytest.raises(UnavailableError, match=r"schema revision none.*jobservice db upgrade"):
        SqliteRows(str(missing), f"sqlite:///{missing}").check_schema()
    assert not missing.exists()


def test_a_migrated_file_passes_and_a_garbled_one_cannot_be_reached(tmp_path: Path) -> None:
    good = tmp_path / "jobs.db"
    engine = create_database_engine(f"sqlite:///{good}")
    upgrade(engine)
    engine.dispose()
    SqliteRows(str(good), f"sqlite:///{good}").check_schema()

    garbled = tmp_path / "garbled.db"
    garbled.write_bytes(b"not a database" * 100)
    with pytest.raises(UnavailableError, match="cannot be reached"):
        SqliteRows(str(garbled), f"sqlite:///{garbled}").check_schema()
