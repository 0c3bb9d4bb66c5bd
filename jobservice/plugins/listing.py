"""``list``: an explicit list of item ids.

The definition is a JSON array (``["a", "b"]``) or text with one id per line or comma.
Lists longer than 1,000 ids are split into sub-lists. Items may nest arrays and objects, to
:data:`MAX_DEPTH` levels in all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jobservice.errors import BatchDefinitionError
from jobservice.plugin import BatchPlugin, BatchWorkerServices
from jobservice.plugins._split import check_text, part_bounds

LEAF_SIZE = 1000
MAX_DEPTH = 64
"""How deep arrays and objects may nest in a list definition, the list itself included: items
travel on as JSON, through encoders that recurse."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; JSON has no NaN or Infinity")


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value``, without recursing."""
    deepest, level = 0, [(value, 1)]
    while level:
        node, depth = level.pop()
        if isinstance(node, list | dict):
            deepest = max(deepest, depth)
            level.extend(
                (child, depth + 1) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


def parse_list(definition: str) -> list[Any]:
    """The items of a list definition."""
    check_text("list", definition)
    text = definition.strip()
    if text.startswith("["):
        too_deep = BatchDefinitionError(
            f"list definition is nested more than {MAX_DEPTH} levels deep; arrays and objects "
            f"may nest at most {MAX_DEPTH} levels, the list itself included"
        )
        try:
            items = json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise too_deep from None
        except ValueError as exc:  # JSONDecodeError, NaN, or an integer of thousands of digits
            raise BatchDefinitionError(
                f"list definition is not a valid JSON array: {exc}"
            ) from None
        if not isinstance(items, list):
            raise BatchDefinitionError("list definition must be a JSON array")
        if _depth(items) > MAX_DEPTH:
            raise too_deep
        return items
    separator = "\n" if "\n" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]


class ListBatchPlugin(BatchPlugin):
    """Registers each id of the list as an item."""

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        items = parse_list(batch_definition)
        if len(items) > LEAF_SIZE:
            for a, b in part_bounds(0, len(items), LEAF_SIZE):
                services.register_batch_subtask(json.dumps(items[a:b]))
            return
        for item in items:
            services.register_item_subtask(item)

    def check_definition(
        self, batch_definition: str, task_message_params: Mapping[str, str]
    ) -> None:
        parse_list(batch_definition)

    def estimate_items(self, batch_definition: str) -> int | None:
        return len(parse_list(batch_definition))
