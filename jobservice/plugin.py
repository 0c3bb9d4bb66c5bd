"""The batch plugin interface, in the shape of the reference Batch Worker's.

A plugin gets one batch definition and registers what it splits into: smaller
batches (each handed back to a plugin of the same type later, in its own
workflow) and items (each turned into a task message and sent to the target
pipe). Registration order must be the same every time a definition is
processed: the engine processes a batch more than once, taking a different
slice of its items each time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Protocol


class BatchWorkerServices(Protocol):
    """What a plugin registers its sub-batches and items with."""

    def register_batch_subtask(self, batch_definition: str) -> None:
        """Register a sub-batch, split later by the same plugin."""

    def register_item_subtask(self, item: Any) -> None:
        """Register one item: any JSON value (an id, a path, a record)."""

    def register_invalid_item(self, message: str) -> None:
        """Register an item that cannot be processed; it counts as failed, with ``message``."""


class BatchPlugin(ABC):
    """Splits batch definitions; found by name in the entry-point group jobservice.batch_plugins.

    Raise :class:`jobservice.BatchDefinitionError` (or ``ValueError``) for a definition that can
    never be split: the job fails with that message. Any other exception is taken as transient
    and retried with backoff.
    """

    @abstractmethod
    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        """Register the sub-batches and items ``batch_definition`` splits into."""

    def check_definition(
        self, batch_definition: str, task_message_params: Mapping[str, str]
    ) -> None:
        """Refuse, when the job is submitted, a definition that could never be split.

        Called once per submitted job, in the process that takes the submission, before
        anything is stored or started. Keep it cheap: parse and check the definition (and look
        at the file or folder it names), never enumerate its items. Raise
        :class:`jobservice.BatchDefinitionError` (or ``ValueError``) with a message that names
        the problem and what is allowed; the job is then refused with it. A plugin that does
        not override this accepts every definition here, and finds out in the worker.
        """
        return None

    def estimate_items(self, batch_definition: str) -> int | None:
        """How many items the batch will hold in all, if known cheaply; used for progress."""
        return None
