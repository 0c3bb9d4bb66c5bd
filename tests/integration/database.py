"""The machine's PostgreSQL, for tests: a schema or a database of their own, dropped afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.conftest import unique
from tests.services import service_missing

POSTGRES = os.environ.get("JOBSERVICE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """An SQLAlchemy URL whose search path is a new schema; a failure when PostgreSQL is not
    running (a skip only with ``JOBSERVICE_TEST_ALLOW_SKIP=1``)."""
    schema = unique("jobs").replace("-", "_")
    with _connection() as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
        try:
            base = POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1)
            yield f"{base}?options=-csearch_path%3D{schema}"
        finally:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """The name of a new database in the machine's PostgreSQL, dropped afterwards (with
    whatever is still connected to it); a failure without PostgreSQL (a skip only with
    ``JOBSERVICE_TEST_ALLOW_SKIP=1``).

    Databases of the same prefix are what a run that crashed left behind, and are dropped
    first: the prefix is for tests that never run two at once.
    """
    name = unique(prefix).replace("-", "_")
    with _connection() as connection:
        stale = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}\\_%",)
        ).fetchall()
        for (old,) in stale:
            connection.execute(f'DROP DATABASE "{old}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def _connection() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    try:
        connection = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL is not reachable: {exc}")
    with connection:
        yield connection
