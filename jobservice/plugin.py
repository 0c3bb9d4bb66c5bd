"""The extension interfaces: batch plugins, task message builders and item handlers.

A batch plugin, in the shape of the reference Batch Worker's, gets one batch
definition and registers what it splits into: smaller batches (each handed back
to a plugin of the same type later, in its own workflow) and items (each turned
into a task message by a task message builder, and sent to the target pipe, or
to an item handler in the worker). Registration order must be the same every
time a definition is processed: the engine processes a batch more than once,
taking a different slice of its items each time.

The message envelope the builders and handlers deal in is in
:mod:`jobservice.messages`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    # Not at run time: jobservice.messages imports this module, for its old names.
    from jobservice.messages import TaskMessage, TaskSpec


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


class TaskMessageBuilder(ABC):
    """Turns an item and the job's ``taskMessageParams`` into the task part of a message.

    Found by ``taskMessageType`` in the entry-point group ``jobservice.task_message_builders``.
    Raise ``ValueError`` for an item that cannot become a task: that item fails.
    """

    @abstractmethod
    def build(self, item: Any, params: Mapping[str, str]) -> TaskSpec:
        """The classifier, API version and data of the task for ``item``."""


class ItemHandler(ABC):
    """Processes items in the worker process, for a ``local:<name>`` target pipe.

    Found by name in the entry-point group ``jobservice.item_handlers``. Runs in a worker
    thread; raising marks the item failed with the exception's message. Delivery is at least
    once: after a crash, an item may be handled again.
    """

    @abstractmethod
    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        """Process one item; ``params`` are the job's ``taskMessageParams``."""

    def check_params(self, params: Mapping[str, str]) -> None:
        """Refuse, when a job is submitted, ``taskMessageParams`` this handler could never use.

        Keep it cheap: look at the params only. Raise ``ValueError`` with a message that names
        the param and what is allowed; the job is then refused with it. A handler that does not
        override this accepts any params.
        """
        return None
