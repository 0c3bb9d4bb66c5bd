"""The failed-item ledger: every item of a job that failed, kept in the job database.

Three writers, each a statement for many items at once (a slice of a chunk, a burst of the
tracking pipe, a step of a batch), none per item:

- a chunk that runs items in an item handler records its failures as they happen, counted;
- the tracking consumer records a worker's report of a failure before the batch hears of it,
  not yet counted, and keeps the first report of an item;
- the batch, once it has counted an item failed (once, however often its result came), marks
  the item's row counted and writes its task message there.

A listing reads the counted rows of a round in the order they were first written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, and_, delete, func, select
from sqlalchemy.sql.expression import Executable

from jobservice.db.engine import upsert
from jobservice.db.rows import JobKey
from jobservice.db.tables import FailedItemRow
from jobservice.jobs.job import Failure

_ITEMS = FailedItemRow.__table__  # type: ignore[attr-defined]
_KEY = ["partition_id", "job_id", "round", "task_id"]
WRITE_ROWS = 500
"""Rows a statement writes at most (SQLite takes some 32,000 values a statement)."""
MAX_PAGE = 10_000
"""The most failures one page of a listing holds."""


@dataclass(frozen=True)
class FailedItem:
    """An item that failed: the failure as the API shows it, and what sends it again."""

    task_id: str
    failure_time: datetime
    failure_source: str
    failure_message: str
    message: str | None = None
    """Its task message as JSON; None for an item that never became one."""
    item: str | None = None
    """The plugin's item as JSON, for an item whose task message could not be built."""

    @classmethod
    def of(
        cls, failure: Failure, *, message: str | None = None, item: str | None = None
    ) -> FailedItem:
        return cls(
            task_id=failure.failure_id,
            failure_time=failure.failure_time,
            failure_source=failure.failure_source,
            failure_message=failure.failure_message,
            message=message,
            item=item,
        )

    def failure(self) -> Failure:
        """The failure in the reference's shape: its id is the item's task id."""
        return Failure(
            failure_id=self.task_id,
            failure_time=self.failure_time,
            failure_source=self.failure_source,
            failure_message=self.failure_message,
        )


def _values(
    key: JobKey, round_: int, items: Sequence[FailedItem], counted: bool
) -> list[dict[str, Any]]:
    partition_id, job_id = key
    rows = []
    for item in items:
        values = asdict(item)
        values["failure_time"] = int(item.failure_time.timestamp() * 1000)
        values.update(partition_id=partition_id, job_id=job_id, round=round_, counted=counted)
        rows.append(values)
    return rows


def _write(engine: Engine, statement: Executable, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with engine.begin() as connection:
        for start in range(0, len(rows), WRITE_ROWS):
            connection.execute(statement, rows[start : start + WRITE_ROWS])


def record_failed(
    engine: Engine, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0
) -> None:
    """Items that failed here and are counted failed: an item handler's, or items that never
    became a task message. Written again (a chunk retried), the last word stands."""
    insert = upsert(engine)(_ITEMS)
    statement = insert.on_conflict_do_update(
        index_elements=_KEY,
        set_={
            column: insert.excluded[column]
            for column in (
                "failure_time",
                "failure_source",
                "failure_message",
                "message",
                "item",
                "counted",
            )
        },
    )
    _write(engine, statement, _values(key, round_, items, True))


def report_failed(
    engine: Engine, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0
) -> None:
    """Workers' reports of failed items, before their batch counts them: the first report of
    an item is the one kept."""
    statement = upsert(engine)(_ITEMS).on_conflict_do_nothing(index_elements=_KEY)
    _write(engine, statement, _values(key, round_, items, False))


def count_failed(
    engine: Engine, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0
) -> None:
    """Items their batch has counted failed, each with its task message: a reported item's
    row keeps the report's failure and is counted; an item with no report (it had no result
    in time) is written as ``items`` has it."""
    insert = upsert(engine)(_ITEMS)
    statement = insert.on_conflict_do_update(
        index_elements=_KEY,
        set_={
            "message": insert.excluded.message,
            "item": insert.excluded.item,
            "counted": True,
        },
    )
    _write(engine, statement, _values(key, round_, items, True))


def _counted(key: JobKey, round_: int) -> list[Any]:
    return [
        _ITEMS.c.partition_id == key[0],
        _ITEMS.c.job_id == key[1],
        _ITEMS.c.round == round_,
        _ITEMS.c.counted.is_(True),
    ]


def failed_total(engine: Engine, key: JobKey, *, round_: int = 0) -> int:
    """How many failed items of the round are counted."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(_ITEMS).where(*_counted(key, round_))
            ).scalar_one()
        )


def failed_page(
    engine: Engine, key: JobKey, *, round_: int = 0, limit: int, offset: int = 0
) -> list[FailedItem]:
    """A page of the round's failed items, in the order they were first written."""
    statement = (
        select(_ITEMS)
        .where(*_counted(key, round_))
        .order_by(_ITEMS.c.id)
        .limit(max(0, min(limit, MAX_PAGE)))
        .offset(max(0, offset))
    )
    with engine.connect() as connection:
        return [_item(row) for row in connection.execute(statement).mappings()]


def failed_pages(
    engine: Engine, key: JobKey, *, round_: int = 0, page: int = 2_000
) -> Iterator[list[FailedItem]]:
    """Every failed item of the round, a page at a time by id (each page an indexed seek)."""
    after = 0
    while True:
        statement = (
            select(_ITEMS)
            .where(*_counted(key, round_), _ITEMS.c.id > after)
            .order_by(_ITEMS.c.id)
            .limit(page)
        )
        with engine.connect() as connection:
            rows = list(connection.execute(statement).mappings())
        if rows:
            yield [_item(row) for row in rows]
        if len(rows) < page:
            return
        after = rows[-1]["id"]


def _item(values: RowMapping) -> FailedItem:
    return FailedItem(
        task_id=values["task_id"],
        failure_time=datetime.fromtimestamp(values["failure_time"] / 1000, UTC),
        failure_source=values["failure_source"],
        failure_message=values["failure_message"],
        message=values["message"],
        item=values["item"],
    )


def job_deleted(connection: Connection, key: JobKey) -> None:
    """In the transaction that deletes the job: its failed items go with it."""
    connection.execute(
        delete(_ITEMS).where(and_(_ITEMS.c.partition_id == key[0], _ITEMS.c.job_id == key[1]))
    )


class FailureLedger:
    """The ledger's writes for the worker's activities, off the event loop; without a job
    database (a unit test's worker) nothing is kept."""

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine

    async def record(self, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0) -> None:
        """See :func:`record_failed`."""
        if items and self.engine is not None:
            await asyncio.to_thread(record_failed, self.engine, key, items, round_=round_)

    async def count(self, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0) -> None:
        """See :func:`count_failed`."""
        if items and self.engine is not None:
            await asyncio.to_thread(count_failed, self.engine, key, items, round_=round_)

    async def report(self, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0) -> None:
        """See :func:`report_failed`."""
        if items and self.engine is not None:
            await asyncio.to_thread(report_failed, self.engine, key, items, round_=round_)
