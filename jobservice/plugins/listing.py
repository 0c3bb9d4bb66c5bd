"""``list``: an explicit list of item ids.

The definition is a JSON array (``["a", "b"]``) or text with one id per line or comma.
Lists longer than 1,000 ids are split into sub-lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jobservice.errors import BatchDefinitionError
from jobservice.plugin import BatchPlugin, BatchWorkerServices
from jobservice.plugins._split import part_bounds

LEAF_SIZE = 1000


def parse_list(definition: str) -> list[Any]:
    """The items of a list definition."""
    text = definition.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BatchDefinitionError(
                f"list definition is not a valid JSON array: {exc}"
            ) from None
        if not isinstance(items, list):
            raise BatchDefinitionError("list definition must be a JSON array")
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

    def estimate_items(self, batch_definition: str) -> int | None:
        return len(parse_list(batch_definition))
