"""Failure tolerance: how many failed items a job accepts, as a count or a percentage."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

_TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$", re.ASCII)
MAX_TOLERANCE_COUNT = 2**63 - 1
"""The most failed items a count can allow: the job database's 64-bit counts."""
# What a client may send as failureTolerance (the model itself is how the service holds it).
TOLERANCE_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_TOLERANCE_COUNT},
        {"type": "string", "pattern": r"^\s*[0-9]+([.][0-9]+)?\s*%?\s*$"},
        {"type": "null"},
    ],
    "description": "Failed items the job accepts: a count (5) or a percentage of its items "
    "(2.5%); none by default.",
    "examples": ["5", "2.5%"],
}


class FailureTolerance(BaseModel):
    """How many failed items a job accepts before it fails: a count, or a percentage of items."""

    model_config = ConfigDict(frozen=True)

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str | int | None) -> FailureTolerance:
        """``"5"`` allows five failed items, ``"2.5%"`` allows 2.5 % of them; None allows none."""
        if text is None:
            return cls(count=0)
        if isinstance(text, int):
            if text < 0:
                raise ValueError(f"failureTolerance {text} is negative")
            return cls(count=_count(text))
        match = _TOLERANCE.match(text)
        if match is None:
            raise ValueError(not_a_tolerance(text))
        number, percent = match.groups()
        if percent:
            value = float(number)
            if value > 100:
                raise ValueError(f"failureTolerance {text!r} is over 100%")
            return cls(percent=value)
        if "." in number:
            raise ValueError(f"failureTolerance {text!r}: a count must be a whole number")
        return cls(count=_count(int(number)))

    def exceeded(self, failed: int, total: int) -> bool:
        """Whether ``failed`` items out of ``total`` is more than this tolerance allows."""
        if self.percent is not None:
            return failed * 100 > self.percent * max(total, 1)
        return failed > (self.count or 0)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count or 0)


def parse_tolerance(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(not_a_tolerance(value))
    if value is None or isinstance(value, str | int):
        return FailureTolerance.parse(value)
    if isinstance(value, dict | FailureTolerance):
        return value
    # 2.5 and 1e309 (a float to JSON), lists: only text tells a percentage from a count.
    raise ValueError(not_a_tolerance(value))


def _count(count: int) -> int:
    if count > MAX_TOLERANCE_COUNT:
        raise ValueError(
            f"failureTolerance {count} is over {MAX_TOLERANCE_COUNT}, the most a count can be;"
            ' to accept any number of failures, send "100%"'
        )
    return count


def not_a_tolerance(value: Any) -> str:
    return (
        f"failureTolerance {value!r} is neither a count (5) nor a percentage (2.5%):"
        ' send a whole number, or text such as "2.5%" between "0%" and "100%"'
    )
