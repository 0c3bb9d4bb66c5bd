"""The default task message builder, used when a job names no ``taskMessageType``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobservice.messages import TaskSpec
from jobservice.plugin import TaskMessageBuilder

DEFAULT_CLASSIFIER = "jobservice.item"


class DefaultTaskMessageBuilder(TaskMessageBuilder):
    """``taskData`` is ``{"item": <item>, "params": <taskMessageParams>}``.

    The params ``taskClassifier`` and ``taskApiVersion`` set those fields of the message
    (defaults ``jobservice.item`` and 1).
    """

    def build(self, item: Any, params: Mapping[str, str]) -> TaskSpec:
        return TaskSpec(
            task_classifier=params.get("taskClassifier", DEFAULT_CLASSIFIER),
            task_api_version=int(params.get("taskApiVersion", 1)),
            task_data={"item": item, "params": params},
        )
