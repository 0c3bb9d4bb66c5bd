"""Reading the job list's RSQL ``filter``, with no database.

The grammar, operators and quoting, the bounds, and each refusal's message, which the API
answers 400 with.
"""

from __future__ import annotations

import pytest

from jobservice.db.rsql import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_FILTER_TERMS,
    Comparison,
    Logical,
    LogicalOperator,
    Operator,
    parse_filter,
)
from jobservice.errors import InvalidRequestError


def eq(key: str, *values: str, operator: Operator = Operator.EQUAL) -> Comparison:
    return Comparison(key, operator, values)


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    a, b, c = eq("name", "a"), eq("name", "b"), eq("name", "c")

    assert parse_filter("name==a,name==b;name==c") == Logical(
        LogicalOperator.OR, (a, Logical(LogicalOperator.AND, (b, c)))
    )
    assert parse_filter("name==a or name==b and name==c") == parse_filter("name==a,name==b;name==c")
    assert parse_filter("(name==a,name==b);name==c") == Logical(
        LogicalOperator.AND, (Logical(LogicalOperator.OR, (a, b)), c)
    )
    assert parse_filter("((name==a))") == a
    assert parse_filter(" name == a ") == a
    assert parse_filter("name==band;name==oregon") == Logical(
        LogicalOperator.AND, (eq("name", "band"), eq("name", "oregon"))
    )


@pytest.mark.parametrize(
    ("rsql", "operator"),
    [
        ("percentageComplete==5", Operator.EQUAL),
        ("percentageComplete!=5", Operator.NOT_EQUAL),
        ("percentageComplete=gt=5", Operator.GREATER),
        ("percentageComplete>5", Operator.GREATER),
        ("percentageComplete=ge=5", Operator.GREATER_OR_EQUAL),
        ("percentageComplete>=5", Operator.GREATER_OR_EQUAL),
        ("percentageComplete=lt=5", Operator.LESS),
        ("percentageComplete<5", Operator.LESS),
        ("percentageComplete=le=5", Operator.LESS_OR_EQUAL),
        ("percentageComplete<=5", Operator.LESS_OR_EQUAL),
        ("percentageComplete=in=5", Operator.IN),
        ("percentageComplete=out=(5)", Operator.OUT),
    ],
)
def test_operators_and_their_aliases(rsql: str, operator: Operator) -> None:
    assert parse_filter(rsql) == Comparison("percentageComplete", operator, ("5",))


def test_quoted_values_keep_reserved_characters_and_unescape_backslashes() -> None:
    node = parse_filter(r"""id=in=('a b;c', "it's", 'say \'hi\'', "x\\y", "", 'k=v,(w)', '\*')""")

    assert node == eq(
        "id", "a b;c", "it's", "say 'hi'", "x\\y", "", "k=v,(w)", "*", operator=Operator.IN
    )


def test_statuses_are_read_in_any_case_and_come_back_canonical() -> None:
    assert parse_filter("status=in=(active,FAILED,Paused)") == eq(
        "status", "Active", "Failed", "Paused", operator=Operator.IN
    )


def test_label_keys_take_letters_digits_dashes_underscores_and_colons() -> None:
    assert parse_filter("labels.a-b_c:9==x") == eq("labels.a-b_c:9", "x")


@pytest.mark.parametrize(
    ("rsql", "message"),
    [
        ("", "filter is empty"),
        ("   ", "filter is empty"),
        ("size==1", "unknown key 'size' at position 1; known: id, name, status, "),
        ("name==a;Name==b", "unknown key 'Name' at position 9"),
        ("name=like=a", "unknown operator '=like=' at position 5; known: ==, !="),
        ("name=~a", "unknown operator '=~' at position 5"),
        ("name=a", "unknown operator '=' at position 5"),
        ("(name==a", "'(' at position 1 is never closed"),
        ("name==a;(name==b,(name==c)", "'(' at position 9 is never closed"),
        ("id=in=(a,b", "'(' at position 7 is never closed"),
        ("name==a)", "')' at position 8 has no '('"),
        ("name==a;", "filter ends after ';' at position 8; expected a comparison"),
        ("name==a,", "filter ends after ',' at position 8; expected a comparison"),
        ("name==a and ", "filter ends after 'and' at position 9; expected a comparison"),
        ("name==a or", "filter ends after 'or' at position 9; expected a comparison"),
        ("name==", "filter ends after '==' at position 5; expected a value"),
        ("name", "filter ends after 'name' at position 1; expected an operator after 'name'"),
        ("name==a;;name==b", "expected a comparison at position 9, found ';'"),
        (";name==a", "expected a comparison at position 1, found ';'"),
        ("()", "expected a comparison at position 2, found ')'"),
        ('"name"==a', "expected a comparison at position 1, found '\"name\"'"),
        ("name==a b", "expected ';', ',' or the end at position 9, found 'b'"),
        ("(name==a b)", "expected ';', ',' or ')' at position 10, found 'b'"),
        ("name a", "expected an operator after 'name' at position 6, found 'a'"),
        ("id=in=()", "expected a value at position 8, found ')'"),
        ('name=="abc', "the quote at position 7 is never closed"),
        ("name=='abc\\'", "the quote at position 7 is never closed"),
        ("name==(a,b)", "'==' on name at position 1 takes one value, not 2"),
        ("id=gt=(a,b)", "'=gt=' on id at position 1 takes one value, not 2"),
        (
            "status==Running",
            "status 'Running' at position 1 is not a job status; valid: Waiting, Active, "
            "Paused, Completed, Failed, Cancelled",
        ),
        ("status=in=(Active,Act*)", "status 'Act*' at position 1 is not a job status"),
        ("percentageComplete=gt=abc", "percentageComplete 'abc' at position 1 is not a number"),
        ("percentageComplete==nan", "percentageComplete 'nan' at position 1 is not a number"),
        ("percentageComplete==1e999", "percentageComplete '1e999' at position 1 is not a number"),
        ("percentageComplete=in=(1,x)", "percentageComplete 'x' at position 1 is not a number"),
        ("labels.==x", "label key '' at position 1 must be one or more letters, digits"),
        ("labels.a/b==x", "label key 'a/b' at position 1"),
        ("labels.a.b==x", "label key 'a.b' at position 1"),
    ],
)
def test_a_bad_filter_says_what_and_where(rsql: str, message: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_filter(rsql)
    assert str(raised.value).startswith("filter")
    assert message in str(raised.value)


def nested(depth: int, inner: str = "name==a") -> str:
    return "(" * depth + inner + ")" * depth


def terms(count: int, term: str = "name==a") -> str:
    return ";".join([term] * count)


@pytest.mark.parametrize(
    ("rsql", "message"),
    [
        # Far past the parser's stack and the database's expression depth alike
        (nested(400), f"'(' at position {MAX_FILTER_DEPTH + 1} nests deeper than 20 levels"),
        (nested(MAX_FILTER_DEPTH + 1), "nests deeper than 20 levels"),
        ("name==a;" + nested(MAX_FILTER_DEPTH + 1), "'(' at position 29 nests deeper"),
        (nested(5000), "filter is 10,007 characters; the most is 4,096"),
        (terms(MAX_FILTER_TERMS + 1), "the value at position 807 is one more than the 100"),
        (terms(MAX_FILTER_TERMS + 1, "labels.t==r"), "one more than the 100 a filter may compare"),
        (terms(1000, "labels.team==red"), "filter is 16,999 characters"),
        ("id=in=(" + ",".join(["a"] * (MAX_FILTER_TERMS + 1)) + ")", "one more than the 100"),
        ("name==" + "a" * MAX_FILTER_LENGTH, "filter is 4,102 characters; the most is 4,096"),
        ("labels." + "k" * 256 + "==x", "label key 'kkkkkkkkkkkkkkkkkkkk'... at position 1 is"),
    ],
)
def test_a_filter_past_its_bounds_is_refused_saying_the_bound(rsql: str, message: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_filter(rsql)
    assert str(raised.value).startswith("filter")
    assert message in str(raised.value)
