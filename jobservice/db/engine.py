"""Connecting to the job database, and checking that its schema is the one this version maps.

The check reads Alembic's version table with plain SQL: it runs before every command that
reads a job, and Alembic itself is only loaded where the schema is changed
(:mod:`jobservice.db.schema`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from jobservice.db.revision import SCHEMA_REVISION as SCHEMA_REVISION
from jobservice.db.revision import VERSION_TABLE, check_revision, only_revision

CONNECT_SECONDS = 5
"""How long connecting to PostgreSQL may take: time enough for a loaded server, and a probe
does not wait for it (it answers after 2.5 s)."""
UNACKNOWLEDGED_MILLIS = 10_000
"""How long PostgreSQL may leave what was sent to it unacknowledged before the connection is
given up (TCP_USER_TIMEOUT, where the system has it)."""


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created, and SQLite waits for locks."""
    parsed = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "postgresql":
        # While PostgreSQL is unreachable a connect, or a statement on a connection made
        # before, would otherwise wait for the kernel's TCP retries, minutes, holding a thread.
        bounds = {"connect_timeout": CONNECT_SECONDS, "tcp_user_timeout": UNACKNOWLEDGED_MILLIS}
        options["connect_args"] = {k: v for k, v in bounds.items() if k not in parsed.query}
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
    return only_revision([row[0] for row in revisions])


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this version expects."""
    check_revision(
        lambda: current_revision(engine), engine.url.render_as_string(hide_password=True)
    )


async def open_database(url: str) -> Engine:
    """An engine for ``url``, once its schema is checked to be this version's."""
    engine = create_database_engine(url)
    await asyncio.to_thread(check_schema, engine)
    return engine


def upsert(engine: Engine) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite alike)."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
