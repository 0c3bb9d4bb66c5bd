"""What a batch plugin registers its sub-batches and items with, in a worker: counted all,
kept only in the window an activity asks for."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from jobservice.errors import BatchDefinitionError
from jobservice.plugin import BatchWorkerServices

PAGE_BYTES = 64 << 10
"""Most bytes of sub-batch definitions in one page, well below Temporal's payload limits."""


class Enough(Exception):
    """Stops a plugin once the slice the activity wants is in hand."""


@dataclass(slots=True)
class InvalidItem:
    """An item the plugin registered as invalid, with its reason: it fails when its task
    message would be built."""

    message: str


@dataclass
class CountingServices(BatchWorkerServices):
    """The services a plugin registers a batch's sub-batches and items with, in a worker.

    It counts every sub-batch and item registered, so a batch's totals are known without
    holding them, and keeps only those inside one window of each: a page of sub-batch
    definitions, up to ``PAGE_BYTES``, and a chunk's slice of items. With
    ``stop_after_items`` it stops the plugin once that slice is in hand.
    """

    item_start: int = 0
    item_end: int = 0
    sub_batch_start: int = 0
    sub_batch_end: int = 0
    stop_after_items: bool = False
    items: list[Any] = field(default_factory=list)
    sub_batches: list[str] = field(default_factory=list)
    item_count: int = 0
    sub_batch_count: int = 0

    page_bytes: int = 0
    only: Collection[int] | None = None
    """Keep only the items of these indexes (in index order), not every one of the slice."""

    def register_batch_subtask(self, batch_definition: str) -> None:
        if not isinstance(batch_definition, str):
            raise BatchDefinitionError("a sub-batch definition must be text")
        if self.sub_batch_start <= self.sub_batch_count < self.sub_batch_end:
            if self.sub_batches and self.page_bytes >= PAGE_BYTES:
                self.sub_batch_end = self.sub_batch_count  # the page is full; keep it contiguous
            else:
                self.sub_batches.append(batch_definition)
                self.page_bytes += len(batch_definition)
        self.sub_batch_count += 1

    def register_item_subtask(self, item: Any) -> None:
        index = self.item_count
        if self.item_start <= index < self.item_end and (self.only is None or index in self.only):
            self.items.append(item)
        elif self.stop_after_items and index >= self.item_end:
            raise Enough
        self.item_count = index + 1

    def register_invalid_item(self, message: str) -> None:
        self.register_item_subtask(InvalidItem(message))
