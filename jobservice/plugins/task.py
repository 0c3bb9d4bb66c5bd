"""``task``: a job of one task, sent on as it was given.

This is how a job whose task is not a BatchWorker task runs: its task is the job's only item,
delivered to the task's ``taskPipe`` and tracked to its result like any other item. The
definition is the task's JSON (``taskClassifier``, ``taskApiVersion``, ``taskData``,
``taskDataEncoding``); the ``task`` task message builder turns that one item back into the
task message.

``taskData`` goes out as CAF workers read it: an object as it is, text as base64 (text given
in ``utf8`` is encoded, text given in ``base64`` passes unchanged).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from jobservice.errors import BatchDefinitionError
from jobservice.messages import TaskSpec
from jobservice.plugin import BatchPlugin, BatchWorkerServices, TaskMessageBuilder

TASK = "task"


class SingleTask(BaseModel):
    """The task of a ``task`` job."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    task_classifier: str = Field(min_length=1)
    task_api_version: int
    task_data: dict[str, Any] | str
    task_data_encoding: Literal["utf8", "base64"] | None = None

    def definition(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def message_data(self) -> dict[str, Any] | str:
        if isinstance(self.task_data, str) and self.task_data_encoding != "base64":
            return base64.b64encode(self.task_data.encode()).decode()
        return self.task_data


def _parse(definition: str | Any) -> SingleTask:
    try:
        if isinstance(definition, str):
            return SingleTask.model_validate_json(definition)
        return SingleTask.model_validate(definition)
    except ValidationError as exc:
        raise BatchDefinitionError(f"a task definition is not valid: {exc}") from None


class TaskBatchPlugin(BatchPlugin):
    """Registers the one task of the definition as the job's only item."""

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        task = _parse(batch_definition)
        services.register_item_subtask(task.model_dump(mode="json", by_alias=True))

    def check_definition(
        self, batch_definition: str, task_message_params: Mapping[str, str]
    ) -> None:
        _parse(batch_definition)

    def estimate_items(self, batch_definition: str) -> int | None:
        return 1


class TaskMessageOfTask(TaskMessageBuilder):
    """The task message of a ``task`` job's item: the task as it was given."""

    def build(self, item: Any, params: Mapping[str, str]) -> TaskSpec:
        task = _parse(item)
        return TaskSpec(
            task_classifier=task.task_classifier,
            task_api_version=task.task_api_version,
            task_data=task.message_data(),
        )
