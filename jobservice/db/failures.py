"""The failed-item ledger: every item of a job that failed, kept in the job database, and the
items a redrive sends again.

A row is an item in a round: round 0 is the job's first run, round n its n-th redrive. Its
``state``:

- ``reported``: a worker said it failed; its batch has not counted it yet (the tracking
  consumer writes the report before it signals the batch, and keeps the first report);
- ``failed``: counted failed, with its task message (a chunk writes an item handler's failures
  so as they happen; a batch marks a reported or silent item so once its bitmap counts it);
- ``pending``: copied into a redrive round, to be sent again from its recorded message;
- ``completed``: sent again, and it succeeded.

Every write is one statement for many items (a slice of a chunk, a burst of the tracking pipe,
a step of a batch), none per item. The job's failed items are its last round's ``failed`` and
``pending`` rows, in the order they were first written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, and_, delete, func, literal, select, update
from sqlalchemy.sql.expression import Executable

from jobservice.db.engine import upsert
from jobservice.db.rows import JobKey
from jobservice.db.tables import FailedItemRow
from jobservice.jobs.job import Failure

_ITEMS = FailedItemRow.__table__  # type: ignore[attr-defined]
_KEY = ["partition_id", "job_id", "round", "task_id"]
REPORTED, FAILED, PENDING, COMPLETED = "reported", "failed", "pending", "completed"
STILL_FAILED = (FAILED, PENDING)
"""The states of a round's rows that are failed items of the job."""
WRITE_ROWS = 500
"""Rows a statement writes at most (SQLite takes some 32,000 values a statement)."""
MAX_PAGE = 10_000
"""The most failures one page of a listing holds."""
_DETAILS = ("failure_time", "failure_source", "failure_message")


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
    position: int | None = None
    """Its place among the items of a redrive round."""

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
    key: JobKey, round_: int, items: Sequence[FailedItem], state: str
) -> list[dict[str, Any]]:
    partition_id, job_id = key
    return [
        {
            "partition_id": partition_id,
            "job_id": job_id,
            "round": round_,
            "task_id": item.task_id,
            "failure_time": int(item.failure_time.timestamp() * 1000),
            "failure_source": item.failure_source,
            "failure_message": item.failure_message,
            "message": item.message,
            "item": item.item,
            "state": state,
        }
        for item in items
    ]


def _write(engine: Engine, statement: Executable, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with engine.begin() as connection:
        for start in range(0, len(rows), WRITE_ROWS):
            connection.execute(statement, rows[start : start + WRITE_ROWS])


def _is(key: JobKey, round_: int) -> list[Any]:
    return [_ITEMS.c.partition_id == key[0], _ITEMS.c.job_id == key[1], _ITEMS.c.round == round_]


def record_failed(
    engine: Engine, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0
) -> None:
    """Items that failed here and are counted failed: an item handler's, or items that never
    became a task message. Written again (a chunk retried), the last word stands. In a redrive
    the item's row is there already, with the message it was sent with, which it keeps."""
    insert = upsert(engine)(_ITEMS)
    changed = {column: insert.excluded[column] for column in (*_DETAILS, "state")}
    if round_ == 0:
        changed.update(message=insert.excluded.message, item=insert.excluded.item)
    statement = insert.on_conflict_do_update(index_elements=_KEY, set_=changed)
    _write(engine, statement, _values(key, round_, items, FAILED))


def report_failed(
    engine: Engine, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0
) -> None:
    """Workers' reports of failed items, before their batch counts them. The first report of
    an item is kept; in a redrive, a report replaces the details an item was copied with."""
    insert = upsert(engine)(_ITEMS)
    statement = insert.on_conflict_do_update(
        index_elements=_KEY,
        set_={column: insert.excluded[column] for column in _DETAILS},
        where=_ITEMS.c.state == PENDING,
    )
    _write(engine, statement, _values(key, round_, items, REPORTED))


def count_failed(
    engine: Engine, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0
) -> None:
    """Items their batch has counted failed, each with its task message: a reported item's
    row keeps the report's failure and is counted; an item with no report (it had no result
    in time) is written as ``items`` has it."""
    insert = upsert(engine)(_ITEMS)
    statement = insert.on_conflict_do_update(
        index_elements=_KEY,
        set_={"message": insert.excluded.message, "item": insert.excluded.item, "state": FAILED},
    )
    _write(engine, statement, _values(key, round_, items, FAILED))


def settle_positions(
    engine: Engine,
    key: JobKey,
    round_: int,
    *,
    completed: Sequence[int] = (),
    failed: Sequence[int] = (),
    expired: Sequence[int] = (),
    expiry: tuple[datetime, str, str] | None = None,
) -> None:
    """What became of items of a redrive round, by position: ``completed``; ``failed`` on a
    worker's report (whose details are on the row); ``expired``, failed without a result in
    time, with the ``expiry`` (time, source, message) as their failure."""
    with engine.begin() as connection:
        for positions, values in (
            (completed, {"state": COMPLETED}),
            (failed, {"state": FAILED}),
            (expired, _expired(expiry)),
        ):
            for start in range(0, len(positions), WRITE_ROWS):
                connection.execute(
                    update(_ITEMS)
                    .where(
                        *_is(key, round_),
                        _ITEMS.c.position.in_(positions[start : start + WRITE_ROWS]),
                    )
                    .values(**values)
                )


def _expired(expiry: tuple[datetime, str, str] | None) -> dict[str, Any]:
    if expiry is None:
        return {"state": FAILED}
    time, source, message = expiry
    return {
        "state": FAILED,
        "failure_time": int(time.timestamp() * 1000),
        "failure_source": source,
        "failure_message": message,
    }


def complete_items(engine: Engine, key: JobKey, round_: int, task_ids: Sequence[str]) -> None:
    """Items of a redrive round that succeeded when sent again."""
    with engine.begin() as connection:
        for start in range(0, len(task_ids), WRITE_ROWS):
            connection.execute(
                update(_ITEMS)
                .where(
                    *_is(key, round_), _ITEMS.c.task_id.in_(task_ids[start : start + WRITE_ROWS])
                )
                .values(state=COMPLETED)
            )


def start_round(connection: Connection, key: JobKey, round_: int, *, numbered: bool = True) -> int:
    """Copy the job's failed items of the round before ``round_`` into it, pending and
    numbered from 0 in the order they were first written; how many. In the transaction that
    starts the redrive. A redrive that first carries on the job's tree numbers them only once
    that is done (:func:`number_round`): until then no result is taken to be one of them."""
    earlier = _ITEMS.alias("earlier")
    copies = select(
        earlier.c.partition_id,
        earlier.c.job_id,
        literal(round_).label("round"),
        earlier.c.task_id,
        earlier.c.failure_time,
        earlier.c.failure_source,
        earlier.c.failure_message,
        earlier.c.message,
        earlier.c.item,
        literal(PENDING).label("state"),
        (func.row_number().over(order_by=earlier.c.id) - 1).label("position")
        if numbered
        else literal(None).label("position"),
    ).where(
        earlier.c.partition_id == key[0],
        earlier.c.job_id == key[1],
        earlier.c.round == round_ - 1,
        earlier.c.state.in_(STILL_FAILED),
    )
    columns = [
        "partition_id",
        "job_id",
        "round",
        "task_id",
        "failure_time",
        "failure_source",
        "failure_message",
        "message",
        "item",
        "state",
        "position",
    ]
    result = connection.execute(_ITEMS.insert().from_select(columns, copies))
    return int(result.rowcount)


def number_round(engine: Engine, key: JobKey, round_: int) -> int:
    """Number from 0 the items copied into a round that were left unnumbered; how many the
    round sends again. Done again, it changes nothing."""
    place = (func.row_number().over(order_by=_ITEMS.c.id) - 1).label("position")
    unnumbered = (
        select(_ITEMS.c.id, place)
        .where(*_is(key, round_), _ITEMS.c.state == PENDING, _ITEMS.c.position.is_(None))
        .subquery()
    )
    with engine.begin() as connection:
        connection.execute(
            update(_ITEMS)
            .where(_ITEMS.c.id == unnumbered.c.id)
            .values(position=unnumbered.c.position)
        )
    return round_size(engine, key, round_)


def still_failed(connection: Connection, key: JobKey, round_: int) -> int:
    """How many failed items the round holds: what a redrive after it would send."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(_ITEMS)
            .where(*_is(key, round_), _ITEMS.c.state.in_(STILL_FAILED))
        ).scalar_one()
    )


def round_items(engine: Engine, key: JobKey, round_: int, start: int, end: int) -> list[FailedItem]:
    """The items of a redrive round at positions ``[start, end)``, in position order."""
    statement = (
        select(_ITEMS)
        .where(*_is(key, round_), _ITEMS.c.position >= start, _ITEMS.c.position < end)
        .order_by(_ITEMS.c.position)
    )
    with engine.connect() as connection:
        return [_item(row) for row in connection.execute(statement).mappings()]


def round_size(engine: Engine, key: JobKey, round_: int) -> int:
    """How many items a redrive round sends again."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(_ITEMS)
                .where(*_is(key, round_), _ITEMS.c.position.is_not(None))
            ).scalar_one()
        )


def positions_of(
    engine: Engine, key: JobKey, round_: int, task_ids: Sequence[str]
) -> dict[str, int] | None:
    """The positions in a redrive round of the items ``task_ids`` that it holds; None while
    the round's items are not numbered (its job's tree is carrying on first)."""
    found: dict[str, int] = {}
    with engine.connect() as connection:
        numbered = connection.execute(
            select(_ITEMS.c.id).where(*_is(key, round_), _ITEMS.c.position.is_not(None)).limit(1)
        ).first()
        if numbered is None:
            return None
        for start in range(0, len(task_ids), WRITE_ROWS):
            statement = select(_ITEMS.c.task_id, _ITEMS.c.position).where(
                *_is(key, round_),
                _ITEMS.c.task_id.in_(task_ids[start : start + WRITE_ROWS]),
                _ITEMS.c.position.is_not(None),
            )
            found.update((row.task_id, row.position) for row in connection.execute(statement))
    return found


def _listed(key: JobKey, round_: int) -> list[Any]:
    return [*_is(key, round_), _ITEMS.c.state.in_(STILL_FAILED)]


def failed_total(engine: Engine, key: JobKey, *, round_: int = 0) -> int:
    """How many failed items the round holds."""
    with engine.connect() as connection:
        return still_failed(connection, key, round_)


def failed_page(
    engine: Engine, key: JobKey, *, round_: int = 0, limit: int, offset: int = 0
) -> list[FailedItem]:
    """A page of the round's failed items, in the order they were first written."""
    statement = (
        select(_ITEMS)
        .where(*_listed(key, round_))
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
            .where(*_listed(key, round_), _ITEMS.c.id > after)
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
        position=values["position"],
    )


def job_deleted(connection: Connection, key: JobKey) -> None:
    """In the transaction that deletes the job: its failed items go with it."""
    connection.execute(
        delete(_ITEMS).where(and_(_ITEMS.c.partition_id == key[0], _ITEMS.c.job_id == key[1]))
    )


class FailureLedger:
    """The ledger's writes for the worker's activities and the tracking consumer, off the
    event loop; without a job database (a unit test's worker) nothing is kept."""

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine

    async def _run(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        # Off the event loop always: a write may wait for another writer's lock.
        if self.engine is None:
            return None
        return await asyncio.to_thread(call, self.engine, *args, **kwargs)

    async def record(self, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0) -> None:
        """See :func:`record_failed`."""
        if items:
            await self._run(record_failed, key, items, round_=round_)

    async def count(self, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0) -> None:
        """See :func:`count_failed`."""
        if items:
            await self._run(count_failed, key, items, round_=round_)

    async def report(self, key: JobKey, items: Sequence[FailedItem], *, round_: int = 0) -> None:
        """See :func:`report_failed`."""
        if items:
            await self._run(report_failed, key, items, round_=round_)

    async def complete(self, key: JobKey, round_: int, task_ids: Sequence[str]) -> None:
        """See :func:`complete_items`."""
        if task_ids:
            await self._run(complete_items, key, round_, task_ids)

    async def settle(self, key: JobKey, round_: int, **outcomes: Any) -> None:
        """See :func:`settle_positions`."""
        await self._run(settle_positions, key, round_, **outcomes)

    async def size(self, key: JobKey, round_: int) -> int:
        """See :func:`round_size`."""
        return int(await self._run(round_size, key, round_) or 0)

    async def items(self, key: JobKey, round_: int, start: int, end: int) -> list[FailedItem]:
        """See :func:`round_items`."""
        return list(await self._run(round_items, key, round_, start, end) or [])

    async def positions(
        self, key: JobKey, round_: int, task_ids: Sequence[str]
    ) -> dict[str, int] | None:
        """See :func:`positions_of`."""
        if self.engine is None:
            return {}
        found: dict[str, int] | None = await self._run(positions_of, key, round_, task_ids)
        return found
