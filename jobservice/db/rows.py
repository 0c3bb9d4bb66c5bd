"""One job's row, read without the ORM mapping of the tables.

Reading a job is what ``jobservice status`` does, many times over in a script or a ``watch``
loop, so it loads little: the row comes back as a mapping of column names to values, its JSON
and boolean columns decoded as the mapped row's (:mod:`jobservice.db.tables`). A SQLite job
database (the embedded stack's) is read with Python's own ``sqlite3``; any other with
SQLAlchemy Core, imported only then.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Collection
from contextlib import closing
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jobservice.db.revision import VERSION_TABLE, check_revision, only_revision

if TYPE_CHECKING:
    from sqlalchemy import Engine, TextualSelect

JOB_BY_KEY = (
    "SELECT job.*, pipe.held AS paused_held, pipe.dropped AS paused_dropped FROM job "
    "LEFT JOIN job_paused_pipe pipe ON pipe.partition_id = job.partition_id "
    "AND pipe.job_id = job.job_id AND NOT pipe.job_deleted "
    "WHERE job.partition_id = :partition_id AND job.job_id = :job_id"
)
"""A job's row, with the counts of its paused pipe (``paused_held``, ``paused_dropped``; null
when it has none) read in the same go."""
JSON_COLUMNS = ("labels", "definition", "failures", "prerequisite_job_ids")
BOOLEAN_COLUMNS = ("splitting_complete",)
IN_HAND_FRESH_MILLIS = 10_000
"""A worker's row of items in hand counts while it has refreshed it within this long."""
_SQLITE_FILE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?#%]+)")
"""A SQLite URL naming a file, with nothing more to it (no query, no escapes)."""


JobKey = tuple[str, str]
"""(partition id, job id)"""


def now_millis() -> int:
    """Now, in epoch milliseconds: how the job database's tables hold a time."""
    return int(time.time() * 1000)


class JobRows(Protocol):
    """Where job rows are read from."""

    def job_row(self, *, partition_id: str, job_id: str) -> dict[str, Any] | None:
        """The job's row, column names to values; None when there is none."""

    def items_in_hand(self, keys: Collection[JobKey]) -> dict[JobKey, int]:
        """Of the jobs ``keys``, the items workers are handing to item handlers now, as the
        workers last said (:mod:`jobservice.db.in_hand`); a job with none is left out."""

    def paused_pipes(self, keys: Collection[JobKey]) -> dict[JobKey, tuple[int, int]]:
        """Of the jobs ``keys``, the results each holds on its paused pipe and the results it
        dropped (:mod:`jobservice.db.paused`); a job with neither is left out."""

    def check_schema(self) -> None:
        """Refuse a database whose schema is not this version's (an UnavailableError)."""


async def open_rows(url: str) -> JobRows:
    """The rows of the job database at ``url``, once its schema is checked."""
    path = sqlite_file(url)
    rows: JobRows
    if path is not None:
        rows = SqliteRows(path, url)
    else:
        from jobservice.db.engine import create_database_engine

        rows = CoreRows(create_database_engine(url))
    await asyncio.to_thread(rows.check_schema)
    return rows


def sqlite_file(url: str) -> str | None:
    """The file a plain SQLite URL (``sqlite:///jobs.db``, ``sqlite:////abs/jobs.db``) names;
    None for any other URL, an in-memory database or one with options."""
    match = _SQLITE_FILE.fullmatch(url)
    if match is None or match["path"] == ":memory:":
        return None
    return match["path"]


class CoreRows:
    """Rows read with SQLAlchemy Core, on any job database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def job_row(self, *, partition_id: str, job_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as connection:
            found = connection.execute(
                _job_query(), {"partition_id": partition_id, "job_id": job_id}
            )
            row = found.mappings().first()
        return None if row is None else dict(row)

    def items_in_hand(self, keys: Collection[JobKey]) -> dict[JobKey, int]:
        if not keys:
            return {}
        from sqlalchemy import text

        sql, parameters = _in_hand_query(keys)
        with self._engine.connect() as connection:
            found = connection.execute(text(sql), parameters).all()
        return _in_hand(found, keys)

    def paused_pipes(self, keys: Collection[JobKey]) -> dict[JobKey, tuple[int, int]]:
        if not keys:
            return {}
        from sqlalchemy import text

        sql, parameters = _paused_query(keys)
        with self._engine.connect() as connection:
            found = connection.execute(text(sql), parameters).all()
        return _paused(found, keys)

    def check_schema(self) -> None:
        from jobservice.db.engine import check_schema

        check_schema(self._engine)


@cache
def _job_query() -> TextualSelect:
    from sqlalchemy import JSON, Boolean, text

    types = {name: JSON for name in JSON_COLUMNS} | {name: Boolean for name in BOOLEAN_COLUMNS}
    return text(JOB_BY_KEY).columns(**types)


class SqliteRows:
    """Rows of a SQLite job database file, read with ``sqlite3``."""

    def __init__(self, path: str, url: str) -> None:
        self._path = path
        self._url = url

    def _connect(self) -> sqlite3.Connection:
        # A read must not make a database: a missing file is an error, not a new one.
        uri = f"{Path(self._path).absolute().as_uri()}?mode=rw"
        connection = sqlite3.connect(uri, uri=True, timeout=30)
        connection.row_factory = sqlite3.Row
        return connection

    def job_row(self, *, partition_id: str, job_id: str) -> dict[str, Any] | None:
        # sqlite3 takes the same named parameters as SQLAlchemy's text().
        key = {"partition_id": partition_id, "job_id": job_id}
        with closing(self._connect()) as connection:
            row = connection.execute(JOB_BY_KEY, key).fetchone()
        if row is None:
            return None
        found = dict(row)
        for name in JSON_COLUMNS:
            found[name] = json.loads(found[name])
        for name in BOOLEAN_COLUMNS:
            found[name] = bool(found[name])
        return found

    def items_in_hand(self, keys: Collection[JobKey]) -> dict[JobKey, int]:
        if not keys:
            return {}
        sql, parameters = _in_hand_query(keys)
        with closing(self._connect()) as connection:
            found = connection.execute(sql, parameters).fetchall()
        return _in_hand(found, keys)

    def paused_pipes(self, keys: Collection[JobKey]) -> dict[JobKey, tuple[int, int]]:
        if not keys:
            return {}
        sql, parameters = _paused_query(keys)
        with closing(self._connect()) as connection:
            found = connection.execute(sql, parameters).fetchall()
        return _paused(found, keys)

    def check_schema(self) -> None:
        check_revision(self._revision, self._url)

    def _revision(self) -> str | None:
        if not Path(self._path).exists():
            return None  # as SQLAlchemy would find it: a new, empty database
        with closing(self._connect()) as connection:
            table = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
            ).fetchone()
            if table is None:
                return None
            revisions = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        return only_revision([row[0] for row in revisions])


def _in_hand_query(keys: Collection[JobKey]) -> tuple[str, dict[str, object]]:
    """SQL summing the fresh rows of the jobs of ``keys`` by job, and its named parameters:
    the same text for ``sqlite3`` and SQLAlchemy's ``text()``."""
    where, parameters = _of_jobs(keys)
    sql = (
        f"SELECT partition_id, job_id, SUM(items) FROM job_items_in_hand WHERE {where} "
        "AND updated_time >= :since GROUP BY partition_id, job_id"
    )
    since = now_millis() - IN_HAND_FRESH_MILLIS
    return sql, parameters | {"since": since}


def _paused_query(keys: Collection[JobKey]) -> tuple[str, dict[str, object]]:
    """SQL reading the paused pipe counts of the jobs of ``keys``, and its parameters."""
    where, parameters = _of_jobs(keys)
    sql = (
        f"SELECT partition_id, job_id, held, dropped FROM job_paused_pipe WHERE {where} "
        "AND NOT job_deleted"
    )
    return sql, parameters


def _of_jobs(keys: Collection[JobKey]) -> tuple[str, dict[str, object]]:
    """A condition selecting (at least) the jobs of ``keys``, and its named parameters."""
    partitions = sorted({partition for partition, _ in keys})
    job_ids = sorted({job_id for _, job_id in keys})
    in_partitions = ", ".join(f":p{index}" for index in range(len(partitions)))
    in_jobs = ", ".join(f":j{index}" for index in range(len(job_ids)))
    parameters: dict[str, object] = {f"p{i}": p for i, p in enumerate(partitions)}
    parameters |= {f"j{i}": job_id for i, job_id in enumerate(job_ids)}
    return f"partition_id IN ({in_partitions}) AND job_id IN ({in_jobs})", parameters


def _paused(found: Collection[Any], keys: Collection[JobKey]) -> dict[JobKey, tuple[int, int]]:
    wanted = set(keys)
    counts = {(str(row[0]), str(row[1])): paused_counts(row[2], row[3]) for row in found}
    return {key: count for key, count in counts.items() if key in wanted and count is not None}


def paused_counts(held: int | None, dropped: int | None) -> tuple[int, int] | None:
    """A job's results held on its paused pipe and dropped, as read; None when it has none."""
    counts = (max(0, int(held or 0)), int(dropped or 0))
    return counts if any(counts) else None


def _in_hand(found: Collection[Any], keys: Collection[JobKey]) -> dict[JobKey, int]:
    wanted = set(keys)
    sums = {(str(row[0]), str(row[1])): int(row[2]) for row in found}
    return {key: count for key, count in sums.items() if key in wanted and count > 0}
