"""The job list's ``filter``: RSQL text read into a tree of comparisons, and checked.

The grammar is rsql-parser's: ``;`` or `` and `` binds tighter than ``,`` or `` or ``,
parentheses group, and a comparison is ``key operator value`` or ``key operator (v1,v2)``.
A filter that cannot be read, or names an unknown key, operator, status or label key, is an
:class:`InvalidRequestError` whose message says what and where (counted from 1): the API
answers 400 with it. Nothing here knows SQL; :mod:`jobservice.db.query` compiles the tree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeAlias

from jobservice.errors import InvalidRequestError
from jobservice.jobs.job import LABEL_KEY, LABEL_KEY_LENGTH
from jobservice.jobs.status import JobStatus

LABEL_PREFIX = "labels."
TEXT_KEYS = ("id", "name", "status")
"""Keys of a filter that compare as text."""
NUMBER_KEYS = ("percentageComplete",)
"""Keys of a filter that compare as numbers."""
# Bounds no real filter reaches; past them a filter is refused before any SQL is built, so
# that it can neither exhaust the parser's stack nor the database's expression depth, nor
# keep the database busy for seconds.
MAX_FILTER_LENGTH = 4096
"""Characters in a ``filter``."""
MAX_FILTER_DEPTH = 20
"""Parentheses nested in a ``filter``."""
MAX_FILTER_TERMS = 100
"""Values compared in a ``filter``: one per comparison, one per entry of an ``=in=`` list."""
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
    """How a group's children combine: ``;`` or ``and``, ``,`` or ``or``."""

    AND = "and"
    OR = "or"


_OPERATORS = {op.value: op for op in Operator} | {
    ">": Operator.GREATER,
    ">=": Operator.GREATER_OR_EQUAL,
    "<": Operator.LESS,
    "<=": Operator.LESS_OR_EQUAL,
}
_LISTS = (Operator.IN, Operator.OUT)


@dataclass(frozen=True)
class Comparison:
    """``key operator values``; only ``=in=`` and ``=out=`` take more than one value."""

    key: str
    operator: Operator
    values: tuple[str, ...]


@dataclass(frozen=True)
class Logical:
    """Children joined by one logical operator."""

    op: LogicalOperator
    children: tuple[Node, ...]


Node: TypeAlias = Comparison | Logical


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
        return checked(comparison, f" at position {key.position}")

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


def checked(comparison: Comparison, where: str = "") -> Comparison:
    """``comparison`` if its key, operator and values go together, statuses made canonical.

    A filter built in code goes through the same checks as a parsed one; ``where`` (such as
    ``" at position 3"``) places an error in the filter's text.
    """
    key, operator, values = comparison.key, comparison.operator, comparison.values
    if not values:
        raise InvalidRequestError(f"filter: {operator.value!r} on {key}{where} has no value")
    if len(values) > 1 and operator not in _LISTS:
        raise InvalidRequestError(
            f"filter: {operator.value!r} on {key}{where} takes one value, not {len(values)}"
        )
    if key.startswith(LABEL_PREFIX):
        check_label_key(key.removeprefix(LABEL_PREFIX), "filter:", where)
    elif key == "status":
        return replace(comparison, values=tuple(_status(value, where) for value in values))
    elif key in NUMBER_KEYS:
        for value in values:
            read_number(value, f"filter: {key} {value!r}{where}")
    elif key not in TEXT_KEYS:
        known = ", ".join([*TEXT_KEYS, *NUMBER_KEYS, LABEL_PREFIX + "<key>"])
        raise InvalidRequestError(f"filter: unknown key {key!r}{where}; known: {known}")
    return comparison


def _status(value: str, where: str) -> str:
    if value.lower() not in _STATUSES:
        valid = ", ".join(_STATUSES.values())
        raise InvalidRequestError(
            f"filter: status {value!r}{where} is not a job status; valid: {valid}"
        )
    return _STATUSES[value.lower()]


def read_number(value: str, what: str) -> float:
    """``value`` as a finite number; otherwise an error saying ``what`` is not a number."""
    number = float(value) if _NUMBER.fullmatch(value) else math.nan
    if not math.isfinite(number):
        raise InvalidRequestError(f"{what} is not a number")
    return number


def check_label_key(key: str, parameter: str, where: str = "") -> None:
    """Refuse a label key no job can have, in the words of ``parameter`` (``"sort:"``)."""
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
