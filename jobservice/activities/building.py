"""Turning a batch's items into task messages: each item's task id, its message from the
job's task message builder, and the items that became none (an invalid item a plugin
registered, or one the builder failed on), each kept for the failed-item ledger."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobservice.activities.counting import InvalidItem
from jobservice.db.failures import FailedItem
from jobservice.execution.batch import JobContext
from jobservice.jobs.job import Failure
from jobservice.jobs.taskids import item_number
from jobservice.messages import TaskMessage, TaskSpec
from jobservice.plugins.registry import Registry


@dataclass
class Refused:
    """Items that failed before delivery: their indexes in the batch, the first details, and
    every one of them for the ledger."""

    indexes: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    items: list[FailedItem] = field(default_factory=list)

    def before(self, end: int) -> Refused:
        """Those whose index is below ``end``."""
        kept = [at for at, index in enumerate(self.indexes) if index < end]
        return Refused(
            indexes=[self.indexes[at] for at in kept],
            failures=self.failures[: len(kept)],
            items=[self.items[at] for at in kept],
        )


@dataclass
class Built:
    """Task messages, the index in the batch of each one's item, and the items refused."""

    messages: list[TaskMessage] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    refused: Refused = field(default_factory=Refused)


def item_json(item: Any) -> str:
    """An item as JSON, for the ledger: what it was, though it never became a message."""
    if isinstance(item, InvalidItem):
        return json.dumps({"invalidItem": item.message})
    return json.dumps(item, default=repr)


def task_message(context: JobContext, task_id: str, spec: TaskSpec) -> TaskMessage:
    """The task message of the item ``task_id``, from what the job's builder made of it."""
    return TaskMessage(
        job_task_id=task_id,
        task_classifier=spec.task_classifier,
        task_api_version=spec.task_api_version,
        task_data=spec.task_data,
        to=context.target_pipe,
        correlation_id=f"{context.partition}:{context.job_id}",
        track_to=context.track_to,
        status_check_url=context.status_check_url,
        status_check_interval_millis=context.status_check_interval_millis,
    )


class MessageBuilding:
    """Builds the task messages of one batch's items with the job's builder."""

    def __init__(
        self, registry: Registry, context: JobContext, path: list[int], sub_batch_total: int
    ) -> None:
        self._context = context
        self._builder = registry.builder(context.task_message_type)
        self._builder_source = f"task message builder {context.task_message_type or 'default'!r}"
        self._plugin_source = f"batch plugin {context.batch_type!r}"
        self._sub_batch_total = sub_batch_total
        self._task_prefix = context.task_id(path) + "."

    def task_id(self, index: int) -> str:
        return f"{self._task_prefix}{item_number(self._sub_batch_total, index)}"

    def build(self, items: Iterable[tuple[int, Any]], limit: int) -> Built:
        """The messages of ``items`` (index in the batch, item), keeping the details of the
        first ``limit`` refused."""
        context = self._context
        params: Mapping[str, str] = context.task_message_params
        built = Built()
        refused = built.refused
        for index, item in items:
            task_id = self.task_id(index)
            try:
                if isinstance(item, InvalidItem):
                    raise ValueError(item.message)
                spec = self._builder.build(item, params)
            except Exception as exc:
                failure = Failure(
                    failure_id=task_id,
                    failure_time=datetime.now(UTC),
                    failure_source=self._plugin_source
                    if isinstance(item, InvalidItem)
                    else self._builder_source,
                    failure_message=str(exc),
                )
                refused.indexes.append(index)
                if len(refused.failures) < limit:
                    refused.failures.append(failure)
                refused.items.append(FailedItem.of(failure, item=item_json(item)))
                continue
            built.messages.append(task_message(context, task_id, spec))
            built.indexes.append(index)
        return built


class RedriveBuilding:
    """The task messages of a redrive's items, as the ledger recorded them: the same ids and
    data, whatever the source holds now. An item whose builder failed is built again from its
    recorded item; one its plugin could not produce fails again, saying why."""

    def __init__(self, registry: Registry, context: JobContext) -> None:
        self._context = context
        self._registry = registry

    def build(self, items: Iterable[tuple[int, FailedItem]], limit: int) -> Built:
        built = Built()
        refused = built.refused
        for position, item in items:
            try:
                message = self._message(item)
            except Exception as exc:
                failure = Failure(
                    failure_id=item.task_id,
                    failure_time=datetime.now(UTC),
                    failure_source=item.failure_source,
                    failure_message=str(exc),
                )
                refused.indexes.append(position)
                if len(refused.failures) < limit:
                    refused.failures.append(failure)
                refused.items.append(FailedItem.of(failure, item=item.item))
                continue
            built.messages.append(message)
            built.indexes.append(position)
        return built

    def _message(self, item: FailedItem) -> TaskMessage:
        if item.message is not None:
            return TaskMessage.from_dict(json.loads(item.message))
        recorded = json.loads(item.item) if item.item is not None else None
        if recorded is None or (isinstance(recorded, dict) and "invalidItem" in recorded):
            raise ValueError(
                f"{item.failure_message} (its plugin never produced the item: fix the source "
                "and submit the job again)"
            )
        context = self._context
        spec = self._registry.builder(context.task_message_type).build(
            recorded, context.task_message_params
        )
        return task_message(context, item.task_id, spec)
