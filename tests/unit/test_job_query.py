"""The job list's query parameters checked and made into SQL clauses, with no database.

What the clauses select, on SQLite and PostgreSQL, is tested in
``tests/integration/test_job_query.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobservice.db.query import (
    MAX_LABEL_KEYS,
    MAX_LIMIT,
    MAX_OFFSET,
    JobQuery,
    filter_clause,
    id_prefix_clause,
    parse_sort,
    status_type_clause,
)
from jobservice.db.rsql import (
    NUMBER_KEYS,
    TEXT_KEYS,
    Comparison,
    Logical,
    LogicalOperator,
    Operator,
)
from jobservice.errors import InvalidRequestError

PARTITION = "p"


def test_a_filter_built_in_code_is_checked_too() -> None:
    with pytest.raises(InvalidRequestError, match="unknown key 'size'; known"):
        filter_clause(Comparison("size", Operator.EQUAL, ("1",)), PARTITION)
    with pytest.raises(InvalidRequestError, match="'!=' on name has no value"):
        filter_clause(Comparison("name", Operator.NOT_EQUAL, ()), PARTITION)
    with pytest.raises(InvalidRequestError, match="an 'or' of nothing"):
        filter_clause(Logical(LogicalOperator.OR, ()), PARTITION)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status_type": "Running"}, "statusType 'Running' is unknown; valid: All, NotCompleted, "),
        ({"status_type": ""}, "statusType '' is unknown"),
        ({"label_exist": "team,,tier"}, "labelExist: entry 2 of 'team,,tier' is empty"),
        ({"label_exist": ""}, "labelExist: entry 1 of '' is empty"),
        ({"label_exist": "team,a b"}, "labelExist: label key 'a b' must be one or more"),
        ({"sort": ""}, "sort is empty"),
        ({"sort": "name"}, "sort 'name' needs a direction: 'name:asc' or 'name:desc'"),
        ({"sort": "size:asc"}, "sort field 'size' is unknown; known: createTime, id, name, "),
        ({"sort": "name:up"}, "sort direction 'up' is unknown; use asc or desc"),
        ({"sort": "labels.:asc"}, "sort: label key '' must be one or more"),
        ({"sort": f"labels.{'k' * 10_000}:asc"}, "sort: label key 'kkkkkkkkkkkkkkkkkkkk'... is"),
        ({"label_exist": "k" * 256}, "labelExist: label key 'kkkkkkkkkkkkkkkkkkkk'... is longer"),
        (
            {"label_exist": ",".join(["team"] * (MAX_LABEL_KEYS + 1))},
            "labelExist names 101 label keys; the most is 100",
        ),
        ({"limit": 0}, f"limit 0 is out of range: 1 to {MAX_LIMIT}"),
        ({"limit": MAX_LIMIT + 1}, f"limit {MAX_LIMIT + 1} is out of range"),
        ({"offset": -1}, "offset -1 is negative"),
        ({"offset": MAX_OFFSET + 1}, f"offset {MAX_OFFSET + 1} is over {MAX_OFFSET}"),
        ({"job_id_starts_with": "a\x00"}, "jobIdStartsWith must not contain the NUL"),
        ({"filter": "name==a\x00"}, "filter must not contain the NUL character"),
        ({"filter": "name=="}, "filter ends after '=='"),
    ],
)
def test_a_bad_parameter_is_refused_when_the_query_is_made(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        JobQuery(partition_id=PARTITION, **kwargs)
    assert message in str(raised.value)


def test_the_page_bounds_are_accepted() -> None:
    assert JobQuery(partition_id=PARTITION).limit == 10
    assert JobQuery(partition_id=PARTITION, limit=1, offset=0).limit == 1
    assert JobQuery(partition_id=PARTITION, limit=MAX_LIMIT, offset=10**6).limit == MAX_LIMIT


def test_parameters_that_narrow_nothing_add_no_clause() -> None:
    assert status_type_clause(None) is None
    assert status_type_clause("all") is None
    assert id_prefix_clause(None) is None
    assert id_prefix_clause("") is None
    # The order, then ties by id and by partition (one id may be in two partitions)
    assert len(parse_sort(None)) == 3
    assert len(parse_sort("id:asc")) == 2


COLUMNS = {
    "id": "job.job_id",
    "name": "job.name",
    "status": "job.status",
    "percentageComplete": "job.percentage_complete",
}


def test_every_key_a_filter_takes_compares_its_own_column() -> None:
    assert set(COLUMNS) == {*TEXT_KEYS, *NUMBER_KEYS}
    for key, column in [*COLUMNS.items(), ("labels.team", "job_label.value")]:
        value = "Active" if key == "status" else "1"
        for operator in Operator:
            clause = filter_clause(Comparison(key, operator, (value,)), PARTITION)
            assert column in str(clause.compile()), (key, operator)
