"""``range``: integer ranges ``START-END`` (END exclusive), split recursively into sub-ranges.

``0-1000000`` is a million items, 0 to 999999. An optional ``/LEAF`` sets the most items a
range holds before it is split (``0-1000/100``); the default is 10,000. Numbers are ASCII
digits; START and END are at most 2**63 - 1, a range holds at most :data:`MAX_ITEMS` items and
a leaf at most :data:`MAX_LEAF`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from jobservice.errors import BatchDefinitionError
from jobservice.plugin import BatchPlugin, BatchWorkerServices
from jobservice.plugins._split import check_text, part_bounds, position, shown

LEAF_SIZE = 10_000
MAX_ITEMS = 10_000_000_000
"""The most items one range holds: a hundred times the largest benchmark, more than a day of
work for a cluster, and far below what the job database's counts hold."""
MAX_LEAF = 100_000
"""The largest leaf: a leaf's items are counted in one activity, and each of its chunks skips
the items before its own, so a leaf of millions would stall a worker."""
# ASCII only: \d and \s would take any script's digits and spaces.
_RANGE = re.compile(r"\s*([0-9]+)\s*-\s*([0-9]+)\s*(?:/\s*([0-9]+)\s*)?", re.ASCII)


def parse_range(definition: str) -> tuple[int, int, int]:
    """Start, end and leaf size of a range definition."""
    check_text("range", definition)
    match = _RANGE.fullmatch(definition)
    if match is None:
        raise BatchDefinitionError(
            f"range definition {shown(definition)} is not START-END or START-END/LEAF of "
            "whole numbers in ASCII digits (0-9), e.g. 0-1000 or 0-1000/100"
        )
    start, end = position("range", definition, match[1]), position("range", definition, match[2])
    leaf = position("range", definition, match[3]) if match[3] else LEAF_SIZE
    if end < start:
        raise BatchDefinitionError(
            f"range definition {shown(definition)} ends before it starts: END (exclusive) must "
            "be at least START"
        )
    if not 1 <= leaf <= MAX_LEAF:
        raise BatchDefinitionError(
            f"range definition {shown(definition)}: LEAF must be from 1 to {MAX_LEAF:,} items"
        )
    if end - start > MAX_ITEMS:
        raise BatchDefinitionError(
            f"range definition {shown(definition)} holds {end - start:,} items; the most is "
            f"{MAX_ITEMS:,}. Split the work into several jobs"
        )
    return start, end, leaf


class RangeBatchPlugin(BatchPlugin):
    """Splits an integer range; its items are the integers."""

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        start, end, leaf = parse_range(batch_definition)
        if end - start > leaf:
            suffix = "" if leaf == LEAF_SIZE else f"/{leaf}"
            for a, b in part_bounds(start, end, leaf):
                services.register_batch_subtask(f"{a}-{b}{suffix}")
            return
        register = services.register_item_subtask
        for item in range(start, end):
            register(item)

    def check_definition(
        self, batch_definition: str, task_message_params: Mapping[str, str]
    ) -> None:
        parse_range(batch_definition)

    def estimate_items(self, batch_definition: str) -> int | None:
        start, end, _ = parse_range(batch_definition)
        return end - start
