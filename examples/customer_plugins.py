"""An example plugin package: a batch plugin, a task message builder and an item handler.

Every extension interface is in ``jobservice.plugin``; the message envelope the builder and
the handler deal in is in ``jobservice.messages``. A package registers its classes in its
``pyproject.toml`` (see README, "Writing a plugin"), or a worker embeds them::

    registry = installed().extended(
        batch_plugins={"customers": CustomerIds()},
        builders={"customer": CustomerMessageBuilder()},
        handlers={"index": IndexHandler()},
    )

A job of batch type ``customers`` and definition ``all`` then makes one sub-batch a region,
and one item a customer of it; ``--target-pipe local:index`` indexes each in the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobservice.errors import BatchDefinitionError
from jobservice.messages import TaskMessage, TaskSpec
from jobservice.plugin import BatchPlugin, BatchWorkerServices, ItemHandler, TaskMessageBuilder

CUSTOMERS = {"emea": ["c1", "c2"], "amer": ["c3"], "apac": ["c4", "c5", "c6"]}
"""The customers of each region; a real plugin reads them from where they are kept."""


class CustomerIds(BatchPlugin):
    """``all``: a sub-batch a region; a region: an item a customer, in a stable order."""

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        if batch_definition == "all":
            for region in CUSTOMERS:
                services.register_batch_subtask(region)
            return
        self.check_definition(batch_definition, task_message_params)
        for customer_id in CUSTOMERS[batch_definition]:
            services.register_item_subtask(customer_id)

    def check_definition(
        self, batch_definition: str, task_message_params: Mapping[str, str]
    ) -> None:
        if batch_definition != "all" and batch_definition not in CUSTOMERS:
            raise BatchDefinitionError(
                f"{batch_definition!r} is not all nor one of {', '.join(CUSTOMERS)}"
            )

    def estimate_items(self, batch_definition: str) -> int | None:
        if batch_definition == "all":
            return sum(map(len, CUSTOMERS.values()))
        return len(CUSTOMERS.get(batch_definition, []))


class CustomerMessageBuilder(TaskMessageBuilder):
    """A ``CustomerTask`` of each customer id, with the job's ``region`` param if it has one."""

    def build(self, item: Any, params: Mapping[str, str]) -> TaskSpec:
        if not isinstance(item, str):
            raise ValueError(f"a customer id is text, not {item!r}")  # fails this item alone
        return TaskSpec(
            task_classifier="CustomerTask",
            task_api_version=1,
            task_data={"customerId": item, "region": params.get("region")},
        )


class IndexHandler(ItemHandler):
    """Indexes each customer in the worker, here in memory."""

    def __init__(self) -> None:
        self.indexed: list[str] = []

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        self.indexed.append(message.task_data["customerId"])  # raising fails the item
