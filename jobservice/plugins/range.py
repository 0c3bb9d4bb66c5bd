"""``range``: integer ranges ``START-END`` (END exclusive), split recursively into sub-ranges.

``0-1000000`` is a million items, 0 to 999999. An optional ``/LEAF`` sets the most items a
range holds before it is split (``0-1000/100``); the default is 10,000.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from jobservice.errors import BatchDefinitionError
from jobservice.plugin import BatchPlugin, BatchWorkerServices
from jobservice.plugins._split import part_bounds

LEAF_SIZE = 10_000
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*(?:/\s*(\d+)\s*)?$")


def parse_range(definition: str) -> tuple[int, int, int]:
    """Start, end and leaf size of a range definition."""
    match = _RANGE.match(definition)
    if match is None:
        raise BatchDefinitionError(
            f"range definition {definition!r} is not START-END or START-END/LEAF, e.g. 0-1000"
        )
    start, end = int(match[1]), int(match[2])
    leaf = int(match[3]) if match[3] else LEAF_SIZE
    if end < start:
        raise BatchDefinitionError(f"range definition {definition!r} ends before it starts")
    if leaf < 1:
        raise BatchDefinitionError(f"range definition {definition!r} has a leaf size below 1")
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

    def estimate_items(self, batch_definition: str) -> int | None:
        start, end, _ = parse_range(batch_definition)
        return end - start
