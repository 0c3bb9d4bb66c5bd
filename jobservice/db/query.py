"""The job list's query parameters, as the CAF Job Service Web API takes them, made into SQL.

``filter`` (RSQL, read by :mod:`jobservice.db.rsql`), ``statusType``, ``jobIdStartsWith``
and ``labelExist`` narrow the list, ``sort`` orders it, ``limit`` and ``offset`` page it. A
wrong parameter is an :class:`InvalidRequestError` whose message names it (and, in a filter,
the key, operator or value and its position, counted from 1): the API answers 400 with it.

Text compares and sorts in code point order, and ``*`` wildcards match case-sensitively, on
SQLite and PostgreSQL alike, so that a query gives the same jobs in the same order on either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    SQLColumnExpression,
    Text,
    and_,
    exists,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import col

from jobservice.db.rsql import (
    LABEL_PREFIX,
    NUMBER_KEYS,
    Logical,
    LogicalOperator,
    Node,
    Operator,
    check_label_key,
    checked,
    parse_filter,
    read_number,
)
from jobservice.db.tables import JobLabelRow, JobRow
from jobservice.errors import InvalidRequestError
from jobservice.jobs.status import JobStatus

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
MAX_OFFSET = 2**63 - 1  # the databases' 64-bit integer; more cannot reach them
MAX_LABEL_KEYS = 100
"""Label keys in ``labelExist``."""
# The columns of the keys a filter compares: rsql's TEXT_KEYS and NUMBER_KEYS.
_TEXT_COLUMNS = {"id": col(JobRow.job_id), "name": col(JobRow.name), "status": col(JobRow.status)}
_NUMBER_COLUMNS = {"percentageComplete": col(JobRow.percentage_complete)}
_NEGATIONS = {Operator.NOT_EQUAL: Operator.EQUAL, Operator.OUT: Operator.IN}


class _ByteOrder(FunctionElement[str]):
    """Text in code point order: PostgreSQL's database collation may be linguistic."""

    type = Text()
    inherit_cache = True
    name = "byte_order"


@compiles(_ByteOrder)
def _byte_order_as_is(element: _ByteOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_ByteOrder, "postgresql")
def _byte_order_postgresql(element: _ByteOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)} COLLATE "C")'


class _Matches(FunctionElement[bool]):
    """``(column, like pattern, glob pattern)``: SQLite's LIKE ignores case, its GLOB does not."""

    type = Boolean()
    inherit_cache = True
    name = "matches"


@compiles(_Matches)
def _matches_like(element: _Matches, compiler: SQLCompiler, **kw: Any) -> str:
    column, like, _ = element.clauses
    return f"({compiler.process(column.like(like, escape='/'), **kw)})"


@compiles(_Matches, "sqlite")
def _matches_glob(element: _Matches, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, glob = element.clauses
    return f"({compiler.process(column, **kw)} GLOB {compiler.process(glob, **kw)})"


def _matches(column: SQLColumnExpression[Any], pieces: list[str]) -> ColumnElement[bool]:
    """``column`` is the literal ``pieces`` with any run of characters between them."""
    like = "%".join(re.sub(r"([/%_])", r"/\1", piece) for piece in pieces)
    glob = "*".join(re.sub(r"([*?\[])", r"[\1]", piece) for piece in pieces)
    return _Matches(column, literal(like), literal(glob)).as_comparison(1, 2)


def _test(column: SQLColumnExpression[Any], operator: Operator, values: tuple[str, ...]) -> Any:
    """The comparison on a text column, for a positive ``operator`` (not ``!=``, ``=out=``)."""
    if operator in (Operator.EQUAL, Operator.IN):
        exact = [value for value in values if "*" not in value]
        tests = [_matches(column, value.split("*")) for value in values if "*" in value]
        if exact:
            tests.append(column == exact[0] if len(exact) == 1 else column.in_(exact))
        return or_(*tests)
    return _order_test(_ByteOrder(column), operator, values[0])


def _order_test(column: SQLColumnExpression[Any], operator: Operator, value: Any) -> Any:
    match operator:
        case Operator.GREATER:
            return column > value
        case Operator.GREATER_OR_EQUAL:
            return column >= value
        case Operator.LESS:
            return column < value
        case _:
            return column <= value


def _has_label(partition_id: str | None, *tests: Any) -> ColumnElement[bool]:
    # The constant partition lets the database seek ix_job_label_key_value; the correlation
    # on the whole key keeps the clause right whatever the outer query selects, and is all
    # there is for a query over several partitions (None).
    constant = () if partition_id is None else (col(JobLabelRow.partition_id) == partition_id,)
    return exists().where(
        *constant,
        col(JobLabelRow.partition_id) == col(JobRow.partition_id),
        col(JobLabelRow.job_id) == col(JobRow.job_id),
        *tests,
    )


def filter_clause(node: Node, partition_id: str | None) -> ColumnElement[bool]:
    """``node`` as a WHERE clause over :class:`JobRow` of ``partition_id`` (None: of any).

    ``*`` in a ``==``, ``!=``, ``=in=`` or ``=out=`` value matches any run of characters
    (there is no way to match a literal ``*``). ``!=`` and ``=out=`` are exactly the jobs
    that ``==`` and ``=in=`` leave out: a job without a name is not named ``x``, and a
    job without the label ``team`` is among ``labels.team!=red``. Ordering comparisons
    compare text in code point order and ``percentageComplete`` as a number.
    """
    if isinstance(node, Logical):
        if not node.children:
            raise InvalidRequestError(f"filter: an '{node.op}' of nothing")
        clauses = [filter_clause(child, partition_id) for child in node.children]
        return and_(*clauses) if node.op is LogicalOperator.AND else or_(*clauses)
    comparison = checked(node)
    operator = _NEGATIONS.get(comparison.operator, comparison.operator)
    negated = operator is not comparison.operator
    key, values = comparison.key, comparison.values
    test: ColumnElement[bool]
    if key.startswith(LABEL_PREFIX):
        label = col(JobLabelRow.label) == key.removeprefix(LABEL_PREFIX)
        test = _has_label(partition_id, label, _test(col(JobLabelRow.value), operator, values))
        return not_(test) if negated else test
    if key in NUMBER_KEYS:
        column = _NUMBER_COLUMNS[key]
        numbers = [read_number(value, key) for value in values]
        if operator in (Operator.EQUAL, Operator.IN):
            test = column.in_(numbers) if len(numbers) > 1 else column == numbers[0]
        else:
            test = _order_test(column, operator, numbers[0])
        return not_(test) if negated else test
    text_column = _TEXT_COLUMNS[key]
    test = _test(text_column, operator, values)
    # NOT of a comparison with NULL is NULL, which would leave jobs without a name out.
    return or_(text_column.is_(None), not_(test)) if negated else test


def status_type_clause(name: str | None) -> ColumnElement[bool] | None:
    """``statusType``, any case; ``None`` for ``All`` (the default), which narrows nothing."""
    if name is None:
        return None
    statuses = {type_.lower(): statuses for type_, statuses in STATUS_TYPES.items()}
    if name.lower() not in statuses:
        valid = ", ".join(STATUS_TYPES)
        raise InvalidRequestError(f"statusType {name!r} is unknown; valid: {valid}")
    wanted = statuses[name.lower()]
    return None if wanted is None else col(JobRow.status).in_(wanted)


STATUS_TYPES: dict[str, list[str] | None] = {
    "All": None,
    "NotCompleted": [status for status in JobStatus if status is not JobStatus.COMPLETED],
    "Completed": [JobStatus.COMPLETED],
    "Inactive": [status for status in JobStatus if status.is_terminal],
    "NotFinished": [status for status in JobStatus if not status.is_terminal],
}


def id_prefix_clause(prefix: str | None) -> ColumnElement[bool] | None:
    """``jobIdStartsWith``: ids starting with ``prefix`` exactly (``%``, ``_`` are literal)."""
    return _matches(col(JobRow.job_id), [prefix, ""]) if prefix else None


def label_exist_clause(keys: str, partition_id: str | None) -> ColumnElement[bool]:
    """``labelExist``: jobs that have any of the comma-separated label keys."""
    names = [name.strip() for name in keys.split(",")]
    if len(names) > MAX_LABEL_KEYS:
        raise InvalidRequestError(
            f"labelExist names {len(names):,} label keys; the most is {MAX_LABEL_KEYS}"
        )
    for number, name in enumerate(names, start=1):
        if not name:
            raise InvalidRequestError(f"labelExist: entry {number} of {keys!r} is empty")
        check_label_key(name, "labelExist:")
    return _has_label(partition_id, col(JobLabelRow.label).in_(names))


SORT_FIELDS: dict[str, SQLColumnExpression[Any]] = {
    "createTime": col(JobRow.create_time),
    "id": _ByteOrder(col(JobRow.job_id)),
    "name": _ByteOrder(col(JobRow.name)),
    "status": _ByteOrder(col(JobRow.status)),
    "percentageComplete": col(JobRow.percentage_complete),
    "lastUpdateTime": col(JobRow.last_update_time),
    # The reference's names: its id is jobId; description and external data it sorts by too.
    "jobId": _ByteOrder(col(JobRow.job_id)),
    "description": _ByteOrder(col(JobRow.description)),
    "externalData": _ByteOrder(col(JobRow.external_data)),
}
_BY_ID = ("id", "jobId")
_NULLABLE = ("name", "description", "externalData")


def parse_sort(text: str | None) -> list[SQLColumnExpression[Any]]:
    """``sort`` (``field:asc`` or ``field:desc``, default ``createTime:desc``) as ORDER BY.

    ``labels.<key>`` sorts by that label's value, through a correlated scalar subquery (the
    label is part of job_label's key, so there is one value at most). Jobs without a name or
    without the label come last in either direction, on both databases. Ties are broken by
    job id, ascending, so that pages do not overlap.
    """
    text = "createTime:desc" if text is None else text.strip()
    if not text:
        raise InvalidRequestError("sort is empty")
    if ":" not in text:
        raise InvalidRequestError(f"sort {text!r} needs a direction: '{text}:asc' or '{text}:desc'")
    field, _, direction = text.rpartition(":")
    nullable = field in _NULLABLE or field.startswith(LABEL_PREFIX)
    if field.startswith(LABEL_PREFIX):
        key = field.removeprefix(LABEL_PREFIX)
        check_label_key(key, "sort:")
        value = select(col(JobLabelRow.value)).where(
            col(JobLabelRow.partition_id) == col(JobRow.partition_id),
            col(JobLabelRow.job_id) == col(JobRow.job_id),
            col(JobLabelRow.label) == key,
        )
        expression: SQLColumnExpression[Any] = _ByteOrder(value.scalar_subquery())
    elif field in SORT_FIELDS:
        expression = SORT_FIELDS[field]
    else:
        known = ", ".join([*SORT_FIELDS, LABEL_PREFIX + "<key>"])
        raise InvalidRequestError(f"sort field {field!r} is unknown; known: {known}")
    if direction.lower() not in ("asc", "desc"):
        raise InvalidRequestError(f"sort direction {direction!r} is unknown; use asc or desc")
    ordered = expression.asc() if direction.lower() == "asc" else expression.desc()
    if nullable:
        ordered = ordered.nulls_last()
    # Over several partitions one id may be in two: the partition breaks that tie.
    partition = _ByteOrder(col(JobRow.partition_id)).asc()
    if field in _BY_ID:
        return [ordered, partition]
    return [ordered, SORT_FIELDS["id"].asc(), partition]


@dataclass(frozen=True, kw_only=True)
class JobQuery:
    """The list endpoint's parameters; making one checks them all, so a bad one is a 400 first.

    The count and bulk endpoints use :meth:`where` alone; ``limit`` and ``offset`` page the list.
    The REST API asks of one partition; the dashboard, without ``partition_id``, of the
    ``partitions`` an API key opens, or of every one (None).
    """

    partition_id: str | None = None
    partitions: tuple[str, ...] | None = None
    job_id_starts_with: str | None = None
    status_type: str | None = None
    label_exist: str | None = None
    filter: str | None = None
    sort: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequestError(f"limit {self.limit} is out of range: 1 to {MAX_LIMIT}")
        if self.offset < 0:
            raise InvalidRequestError(f"offset {self.offset} is negative")
        if self.offset > MAX_OFFSET:
            raise InvalidRequestError(f"offset {self.offset} is over {MAX_OFFSET}")
        # PostgreSQL cannot compare text with NUL in it; refused on either database alike.
        for name, text in (("jobIdStartsWith", self.job_id_starts_with), ("filter", self.filter)):
            if text is not None and "\x00" in text:
                raise InvalidRequestError(f"{name} must not contain the NUL character")
        self.where()
        self.order_by()

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.partition_id is not None:
            clauses.append(col(JobRow.partition_id) == self.partition_id)
        elif self.partitions is not None:
            clauses.append(col(JobRow.partition_id).in_(self.partitions))
        for clause in (
            id_prefix_clause(self.job_id_starts_with),
            status_type_clause(self.status_type),
            None
            if self.label_exist is None
            else label_exist_clause(self.label_exist, self.partition_id),
            None
            if self.filter is None
            else filter_clause(parse_filter(self.filter), self.partition_id),
        ):
            if clause is not None:
                clauses.append(clause)
        return clauses

    def order_by(self) -> list[SQLColumnExpression[Any]]:
        return parse_sort(self.sort)
