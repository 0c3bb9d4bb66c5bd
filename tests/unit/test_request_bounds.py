"""What a job body and an id may hold: bounds that keep the job database and the service whole.

Each refusal names the field and the bound, so that the sender knows what to change.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from jobservice.errors import InvalidJobError
from jobservice.jobs.definition import MAX_BODY_DEPTH, NewJob
from jobservice.jobs.ids import validate_ids
from jobservice.jobs.job import LABEL_KEY_LENGTH, LABEL_VALUE_LENGTH, MAX_LABELS
from jobservice.jobs.tolerance import MAX_TOLERANCE_COUNT, FailureTolerance


def _job(**fields: Any) -> dict[str, Any]:
    return {"type": "count-range", "parameters": {"items": 10}, **fields}


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"failureTolerance": 10**30}, f"is over {MAX_TOLERANCE_COUNT}, the most a count can be"),
        ({"failureTolerance": str(10**30)}, "is over 9223372036854775807"),
        ({"failureTolerance": "100.5%"}, "is over 100%"),
        ({"failureTolerance": 2.5}, "failureTolerance 2.5 is neither a count (5) nor a percent"),
        ({"failureTolerance": float("inf")}, "failureTolerance inf is neither a count"),
        ({"failureTolerance": [1]}, "failureTolerance [1] is neither a count"),
        (
            {"labels": {f"k{n}": "v" for n in range(MAX_LABELS + 1)}},
            "a job has at most 100 labels, not 101",
        ),
        ({"labels": {"k" * 10_000: "v"}}, f"is longer than {LABEL_KEY_LENGTH} characters"),
        (
            {"labels": {"team": "v" * (LABEL_VALUE_LENGTH + 1)}},
            "the value of label 'team' is 501 characters; the most is 500",
        ),
        (
            {"parameters": {"a": _nested(MAX_BODY_DEPTH)}},
            "deeper than 32 levels, at parameters.a.0.0.0",
        ),
        ({"parameters": _nested(100_000)}, "deeper than 32 levels, at parameters.0.0"),
    ],
)
def test_a_job_past_a_bound_is_refused_naming_it(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        NewJob.model_validate(_job(**fields))
    assert message in str(raised.value)


def test_a_job_at_its_bounds_is_taken() -> None:
    labels = {f"k{n}": "v" * LABEL_VALUE_LENGTH for n in range(MAX_LABELS - 1)}
    labels["k" * LABEL_KEY_LENGTH] = "v"
    job = NewJob.model_validate(
        _job(
            labels=labels,
            failureTolerance=MAX_TOLERANCE_COUNT,
            parameters={"a": _nested(MAX_BODY_DEPTH - 2)},
        )
    )
    assert job.failure_tolerance == FailureTolerance(count=MAX_TOLERANCE_COUNT)
    assert len(job.labels) == MAX_LABELS
    assert NewJob.model_validate(_job(failureTolerance="100%")).failure_tolerance.percent == 100


@pytest.mark.parametrize(
    ("partition", "job_id", "problem"),
    [
        # Text that shows as another id, or as none, is not an id
        ("a\u202eb", None, "contains U+202E RIGHT-TO-LEFT OVERRIDE, a format character"),
        ("p", "a\u200bb", "the job id 'a\\u200bb' contains U+200B ZERO WIDTH SPACE, a format"),
        ("p", "a\u2066b", "U+2066 LEFT-TO-RIGHT ISOLATE, a format character"),
        ("p", "a\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE, a format character"),
        ("p", "a\x9bb", "U+009B, a control character"),
        ("p", "a\ue000b", "U+E000, a private-use character"),
        ("p", "a\ud800b", "U+D800, a surrogate character"),
        ("p", "a\u0378b", "U+0378, an unassigned character"),
        ("p", "a\uffffb", "U+FFFF, an unassigned character"),
        ("p", "a\u2028b", "white space other than the ordinary space"),
        ("p", "a\tb", "contains a control character"),
        ("p", " a", "begins or ends with a space"),
        ("a/b", None, "contains '/'"),
        ("a|b", None, "contains '|': an id may not hold"),
        ("p", "x" * 10_000, "the job id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... is"),
    ],
)
def test_ids_hold_visible_characters_only(partition: str, job_id: str | None, problem: str) -> None:
    with pytest.raises(InvalidJobError) as raised:
        validate_ids(partition, job_id)
    assert problem in str(raised.value)


@pytest.mark.parametrize("job_id", ["café", "日本", "a-b_c~d", "Ωmega", "a\ufffdb", "nightly run"])
def test_visible_characters_of_any_script_are_ids(job_id: str) -> None:
    validate_ids("p", job_id)
