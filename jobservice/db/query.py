"""The job list's query parameters, as the CAF Job Service Web API takes them, made into SQL.

``filter`` (RSQL), ``statusType``, ``jobIdStartsWith`` and ``labelExist`` narrow the list,
``sort`` orders it, ``limit`` and ``offset`` page it. A wrong parameter is an
:class:`InvalidRequestError` whose message names it (and, in a filter, the key, operator or
value and its position, counted from 1): the API answers 400 with it.

Text compares and sorts in code point order, and ``*`` wildcards match case-sensitively, on
SQLite and PostgreSQL alike, so that a query gives the same jobs in the same order on either.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeAlias

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

from jobservice.db.tables import JobLabelRow, JobRow
from jobservice.errors import InvalidRequestError
from jobservice.models import LABEL_KEY, LABEL_KEY_LENGTH, JobStatus

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
MAX_OFFSET = 2**63 - 1  # the databases' 64-bit integer; more cannot reach them
LABEL_PREFIX = "labels."
# Bounds no real filter reaches; past them a filter is refused before any SQL is built, so
# that it can neither exhaust the parser's stack nor the database's expression depth, nor
# keep the database busy for seconds.
MAX_FILTER_LENGTH = 4096
"""Characters in a ``filter``."""
MAX_FILTER_DEPTH = 20
"""Parentheses nested in a ``filter``."""
MAX_FILTER_TERMS = 100
"""Values compared in a ``filter``: one per comparison, one per entry of an ``=in=`` list."""
MAX_LABEL_KEYS = 100
"""Label keys in ``labelExist``."""
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class Operator(StrEnum):
    """An RSQL comparison, by its FIQL spelling."""

    EQUAL = "=="
    NOT_EQUAL = "!="
    GREATER = "=gt="
    GREATER_OR_EQUAL = "=ge="
    LESS = "=lt="
    LESS_OR_EQUAL = "=le="
    IN = "=in="
    OUT = "=out="


class LogicalOperator(StrEnum):
    AND = "and"
    OR = "or"


_OPERATORS = {op.value: op for op in Operator} | {
    ">": Operator.GREATER,
    ">=": Operator.GREATER_OR_EQUAL,
    "<": Operator.LESS,
    "<=": Operator.LESS_OR_EQUAL,
}
_NEGATIONS = {Operator.NOT_EQUAL: Operator.EQUAL, Operator.OUT: Operator.IN}
_LISTS = (Operator.IN, Operator.OUT)


@dataclass(frozen=True)
class Comparison:
    """``key operator values``; only ``=in=`` and ``=out=`` take more than one value."""

    key: str
    operator: Operator
    values: tuple[str, ...]


@dataclass(frozen=True)
class Logical:
    op: LogicalOperator
    children: tuple[Node, ...]


Node: TypeAlias = Comparison | Logical


# --- parsing ---------------------------------------------------------------------------------

# rsql-parser's tokens. " and " / " or " need the spaces, so "name==band" stays a value.
_TOKENS = re.compile(
    r"""
    (?P<and>\s+and(?=\s|\Z)|;)
    |(?P<or>\s+or(?=\s|\Z)|,)
    |(?P<space>\s+)
    |(?P<open>\()
    |(?P<close>\))
    |(?P<operator>=[A-Za-z]*=|!=|[<>]=?|[=!~<>]+)
    |(?P<quoted>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
    |(?P<unquoted>[^"'();,=!~<>\s]+)
    |(?P<unclosed>["'])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int
    value: str = ""


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    start = 0
    while start < len(text):
        match = _TOKENS.match(text, start)
        if match is None or match.lastgroup is None:  # every character matches some group
            raise InvalidRequestError(f"filter: unexpected {text[start]!r} at position {start + 1}")
        kind, word = match.lastgroup, match.group()
        position = start + len(word) - len(word.lstrip()) + 1
        start = match.end()
        if kind == "unclosed":
            raise InvalidRequestError(f"filter: the quote at position {position} is never closed")
        if kind == "quoted":
            tokens.append(
                _Token(kind, word, position, re.sub(r"\\(.)", r"\1", word[1:-1], flags=re.S))
            )
        elif kind != "space":
            tokens.append(_Token(kind, word.strip(), position, word))
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    """Recursive descent over rsql-parser's grammar: ``or`` of ``and`` of comparisons or groups."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0
        self.terms = 0

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise InvalidRequestError("filter is empty")
        node = self.disjunction()
        token = self.peek()
        if token.kind == "close":
            raise InvalidRequestError(f"filter: ')' at position {token.position} has no '('")
        if token.kind != "end":
            raise self.unexpected(token, "';', ',' or the end")
        return node

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def unexpected(self, token: _Token, expected: str) -> InvalidRequestError:
        if token.kind == "end":
            last = self.tokens[self.index - 1]
            return InvalidRequestError(
                f"filter ends after {last.text!r} at position {last.position}; expected {expected}"
            )
        return InvalidRequestError(
            f"filter: expected {expected} at position {token.position}, found {token.text!r}"
        )

    def disjunction(self) -> Node:
        children = [self.conjunction()]
        while self.peek().kind == "or":
            self.take()
            children.append(self.conjunction())
        return children[0] if len(children) == 1 else Logical(LogicalOperator.OR, tuple(children))

    def conjunction(self) -> Node:
        children = [self.constraint()]
        while self.peek().kind == "and":
            self.take()
            children.append(self.constraint())
        return children[0] if len(children) == 1 else Logical(LogicalOperator.AND, tuple(children))

    def constraint(self) -> Node:
        token = self.peek()
        if token.kind == "open":
            if self.depth == MAX_FILTER_DEPTH:
                raise InvalidRequestError(
                    f"filter: '(' at position {token.position} nests deeper than"
                    f" {MAX_FILTER_DEPTH} levels; write the filter with fewer parentheses"
                )
            self.take()
            self.depth += 1
            node = self.disjunction()
            self.depth -= 1
            self.close(token)
            return node
        if token.kind != "unquoted":
            raise self.unexpected(token, "a comparison")
        key = self.take()
        operator = self.peek()
        if operator.kind != "operator":
            raise self.unexpected(operator, f"an operator after {key.text!r}")
        self.take()
        if operator.text not in _OPERATORS:
            known = ", ".join(_OPERATORS)
            raise InvalidRequestError(
                f"filter: unknown operator {operator.text!r} at position {operator.position};"
                f" known: {known}"
            )
        comparison = Comparison(key.text, _OPERATORS[operator.text], self.arguments())
        return _checked(comparison, f" at position {key.position}")

    def arguments(self) -> tuple[str, ...]:
        token = self.peek()
        if token.kind != "open":
            return (self.value(),)
        self.take()
        values = [self.value()]
        while self.peek().kind == "or":
            self.take()
            values.append(self.value())
        self.close(token)
        return tuple(values)

    def value(self) -> str:
        token = self.peek()
        if token.kind not in ("unquoted", "quoted"):
            raise self.unexpected(token, "a value")
        self.terms += 1
        if self.terms > MAX_FILTER_TERMS:
            raise InvalidRequestError(
                f"filter: the value at position {token.position} is one more than the"
                f" {MAX_FILTER_TERMS} a filter may compare (each comparison and each entry of"
                " an =in= or =out= list is one); split the query into several"
            )
        self.take()
        return token.value

    def close(self, opening: _Token) -> None:
        token = self.peek()
        if token.kind == "end":
            raise InvalidRequestError(f"filter: '(' at position {opening.position} is never closed")
        if token.kind != "close":
            raise self.unexpected(token, "';', ',' or ')'")
        self.take()


def parse_filter(text: str) -> Node:
    """The RSQL ``filter``, checked: known keys and operators, statuses, numbers, label keys.

    Statuses come back in their canonical case (``active`` → ``Active``). A filter is at most
    :data:`MAX_FILTER_LENGTH` characters, :data:`MAX_FILTER_DEPTH` parentheses deep, and
    compares at most :data:`MAX_FILTER_TERMS` values.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidRequestError(
            f"filter is {len(text):,} characters; the most is {MAX_FILTER_LENGTH:,}"
        )
    return _Parser(text).parse()


_STATUSES = {status.value.lower(): status.value for status in JobStatus}
_TEXT_KEYS = {"id": col(JobRow.job_id), "name": col(JobRow.name), "status": col(JobRow.status)}
_NUMBER_KEYS = {"percentageComplete": col(JobRow.percentage_complete)}


def _checked(comparison: Comparison, where: str = "") -> Comparison:
    key, operator, values = comparison.key, comparison.operator, comparison.values
    if not values:
        raise InvalidRequestError(f"filter: {operator.value!r} on {key}{where} has no value")
    if len(values) > 1 and operator not in _LISTS:
        raise InvalidRequestError(
            f"filter: {operator.value!r} on {key}{where} takes one value, not {len(values)}"
        )
    if key.startswith(LABEL_PREFIX):
        _check_label_key(key.removeprefix(LABEL_PREFIX), "filter:", where)
    elif key == "status":
        return replace(comparison, values=tuple(_status(value, where) for value in values))
    elif key in _NUMBER_KEYS:
        for value in values:
            _number(value, f"filter: {key} {value!r}{where}")
    elif key not in _TEXT_KEYS:
        known = ", ".join([*_TEXT_KEYS, *_NUMBER_KEYS, LABEL_PREFIX + "<key>"])
        raise InvalidRequestError(f"filter: unknown key {key!r}{where}; known: {known}")
    return comparison


def _status(value: str, where: str) -> str:
    if value.lower() not in _STATUSES:
        valid = ", ".join(_STATUSES.values())
        raise InvalidRequestError(
            f"filter: status {value!r}{where} is not a job status; valid: {valid}"
        )
    return _STATUSES[value.lower()]


def _number(value: str, what: str) -> float:
    number = float(value) if _NUMBER.fullmatch(value) else math.nan
    if not math.isfinite(number):
        raise InvalidRequestError(f"{what} is not a number")
    return number


def _check_label_key(key: str, parameter: str, where: str = "") -> None:
    if len(key) > LABEL_KEY_LENGTH:
        raise InvalidRequestError(
            f"{parameter} label key {key[:20]!r}...{where} is longer than {LABEL_KEY_LENGTH}"
            " characters, the longest a job's label key can be"
        )
    if not LABEL_KEY.fullmatch(key):
        raise InvalidRequestError(
            f"{parameter} label key {key!r}{where} must be one or more letters, digits,"
            " '_', '-' or ':'"
        )


# --- SQL -------------------------------------------------------------------------------------


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


def _has_label(partition_id: str, *tests: Any) -> ColumnElement[bool]:
    # The constant partition lets the database seek ix_job_label_key_value; the correlation
    # on the whole key keeps the clause right whatever the outer query selects.
    return exists().where(
        col(JobLabelRow.partition_id) == partition_id,
        col(JobLabelRow.partition_id) == col(JobRow.partition_id),
        col(JobLabelRow.job_id) == col(JobRow.job_id),
        *tests,
    )


def filter_clause(node: Node, partition_id: str) -> ColumnElement[bool]:
    """``node`` as a WHERE clause over :class:`JobRow` of ``partition_id``.

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
    comparison = _checked(node)
    operator = _NEGATIONS.get(comparison.operator, comparison.operator)
    negated = operator is not comparison.operator
    key, values = comparison.key, comparison.values
    test: ColumnElement[bool]
    if key.startswith(LABEL_PREFIX):
        label = col(JobLabelRow.label) == key.removeprefix(LABEL_PREFIX)
        test = _has_label(partition_id, label, _test(col(JobLabelRow.value), operator, values))
        return not_(test) if negated else test
    if key in _NUMBER_KEYS:
        column = _NUMBER_KEYS[key]
        numbers = [_number(value, key) for value in values]
        if operator in (Operator.EQUAL, Operator.IN):
            test = column.in_(numbers) if len(numbers) > 1 else column == numbers[0]
        else:
            test = _order_test(column, operator, numbers[0])
        return not_(test) if negated else test
    text_column = _TEXT_KEYS[key]
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


def label_exist_clause(keys: str, partition_id: str) -> ColumnElement[bool]:
    """``labelExist``: jobs that have any of the comma-separated label keys."""
    names = [name.strip() for name in keys.split(",")]
    if len(names) > MAX_LABEL_KEYS:
        raise InvalidRequestError(
            f"labelExist names {len(names):,} label keys; the most is {MAX_LABEL_KEYS}"
        )
    for number, name in enumerate(names, start=1):
        if not name:
            raise InvalidRequestError(f"labelExist: entry {number} of {keys!r} is empty")
        _check_label_key(name, "labelExist:")
    return _has_label(partition_id, col(JobLabelRow.label).in_(names))


SORT_FIELDS: dict[str, SQLColumnExpression[Any]] = {
    "createTime": col(JobRow.create_time),
    "id": _ByteOrder(col(JobRow.job_id)),
    "name": _ByteOrder(col(JobRow.name)),
    "status": _ByteOrder(col(JobRow.status)),
    "percentageComplete": col(JobRow.percentage_complete),
    "lastUpdateTime": col(JobRow.last_update_time),
}


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
    nullable = field == "name" or field.startswith(LABEL_PREFIX)
    if field.startswith(LABEL_PREFIX):
        key = field.removeprefix(LABEL_PREFIX)
        _check_label_key(key, "sort:")
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
    return [ordered] if field == "id" else [ordered, SORT_FIELDS["id"].asc()]


@dataclass(frozen=True, kw_only=True)
class JobQuery:
    """The list endpoint's parameters; making one checks them all, so a bad one is a 400 first.

    The count and bulk endpoints use :meth:`where` alone; ``limit`` and ``offset`` page the list.
    """

    partition_id: str
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
        clauses = [col(JobRow.partition_id) == self.partition_id]
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
