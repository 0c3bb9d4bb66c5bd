"""Connecting to the job database, and checking that its schema is the one this version maps.

The check reads Alembic's version table with plain SQL: it runs before every command that
reads a job, and Alembic itself is only loaded where the schema is changed
(:mod:`jobservice.db.schema`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from jobservice.errors import UnavailableError

SCHEMA_REVISION = "0001"
"""The migration this version's tables are at: the head of ``db/migrations/versions`` (a unit
test holds the two together)."""
VERSION_TABLE = "alembic_version"
"""Where Alembic records the revision a database is at."""


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created, and SQLite waits for locks."""
    parsed = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        options = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # Readers (the API) and the writer (the worker) work at once without blocking each other.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None before its first migration."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        revisions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    if len(revisions) > 1:
        # A linear history leaves one row; more means branches this version does not know.
        raise RuntimeError(f"{VERSION_TABLE} holds {len(revisions)} revisions, not one")
    return str(revisions[0][0]) if revisions else None


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this version expects."""
    try:
        current = current_revision(engine)
    except Exception as exc:
        raise UnavailableError(
            f"the job database at {engine.url.render_as_string(hide_password=True)} cannot be "
            f"reached: {exc}"
        ) from None
    if current != SCHEMA_REVISION:
        raise UnavailableError(
            f"the job database is at schema revision {current or 'none'}, this version needs "
            f"{SCHEMA_REVISION}; run `jobservice db upgrade`"
        )


async def open_database(url: str) -> Engine:
    """An engine for ``url``, once its schema is checked to be this version's."""
    engine = create_database_engine(url)
    await asyncio.to_thread(check_schema, engine)
    return engine
