"""Finds batch plugins, task message builders and item handlers by name, through entry points.

Loaded once per process. A broken entry point gives one warning and is left out rather than
taking every other plugin down; an unknown name is an error that lists the known ones.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, TypeVar

from jobservice.errors import BatchDefinitionError, InvalidJobError
from jobservice.plugin import BatchPlugin, ItemHandler, TaskMessageBuilder

BATCH_PLUGINS = "jobservice.batch_plugins"
TASK_MESSAGE_BUILDERS = "jobservice.task_message_builders"
ITEM_HANDLERS = "jobservice.item_handlers"
DEFAULT_BUILDER = "default"

_log = logging.getLogger(__name__)
T = TypeVar("T")


def _load_group(group: str, kind: type[T]) -> dict[str, T]:
    loaded: dict[str, T] = {}
    for entry in entry_points(group=group):
        try:
            factory: Any = entry.load()
            instance = factory()
        except Exception as exc:  # a broken plugin must not take the others down
            warnings.warn(f"{group} entry point {entry.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if not isinstance(instance, kind):
            warnings.warn(
                f"{group} entry point {entry.name!r} is not a {kind.__name__}; left out",
                stacklevel=2,
            )
            continue
        loaded[entry.name] = instance
    return loaded


def _pick(kind: str, name: str, known: Mapping[str, T]) -> T:
    try:
        return known[name]
    except KeyError:
        names = ", ".join(sorted(known)) or "none installed"
        raise InvalidJobError(f"unknown {kind} {name!r}; known: {names}") from None


@dataclass
class Registry:
    """The plugins, builders and handlers one process can use."""

    batch_plugins: dict[str, BatchPlugin] = field(default_factory=dict)
    builders: dict[str, TaskMessageBuilder] = field(default_factory=dict)
    handlers: dict[str, ItemHandler] = field(default_factory=dict)

    def batch_plugin(self, name: str) -> BatchPlugin:
        return _pick("batch type", name, self.batch_plugins)

    def builder(self, name: str | None) -> TaskMessageBuilder:
        return _pick("task message type", name or DEFAULT_BUILDER, self.builders)

    def handler(self, name: str) -> ItemHandler:
        return _pick("item handler", name, self.handlers)

    def check_batch_definition(
        self, batch_type: str, batch_definition: str, task_message_params: Mapping[str, str]
    ) -> None:
        """Refuse a definition the plugin of ``batch_type`` says it could never split."""
        plugin = self.batch_plugin(batch_type)
        if "\x00" in batch_definition:
            raise InvalidJobError(
                "batchDefinition holds a NUL byte (\\x00); a definition is text without NUL bytes"
            )
        try:
            plugin.check_definition(batch_definition, task_message_params)
        except InvalidJobError:
            raise
        except RecursionError:
            raise InvalidJobError(
                f"batchDefinition: batch type {batch_type!r} finds it nested too deeply"
            ) from None
        except (BatchDefinitionError, ValueError, TypeError, OSError) as exc:
            raise InvalidJobError(f"batchDefinition: {exc}") from None

    def check_handler_params(self, name: str, params: Mapping[str, str]) -> None:
        """Refuse ``taskMessageParams`` the item handler ``name`` says it could never use."""
        handler = self.handler(name)
        try:
            handler.check_params(params)
        except InvalidJobError:
            raise
        except (BatchDefinitionError, ValueError, TypeError) as exc:
            raise InvalidJobError(f"taskMessageParams of local:{name}: {exc}") from None

    def extended(
        self,
        *,
        batch_plugins: Mapping[str, BatchPlugin] | None = None,
        builders: Mapping[str, TaskMessageBuilder] | None = None,
        handlers: Mapping[str, ItemHandler] | None = None,
    ) -> Registry:
        """This registry plus plugins, builders and handlers given in code."""
        return Registry(
            {**self.batch_plugins, **(batch_plugins or {})},
            {**self.builders, **(builders or {})},
            {**self.handlers, **(handlers or {})},
        )


@lru_cache
def installed() -> Registry:
    """Everything installed in this environment's entry points."""
    return Registry(
        batch_plugins=_load_group(BATCH_PLUGINS, BatchPlugin),  # type: ignore[type-abstract]
        builders=_load_group(TASK_MESSAGE_BUILDERS, TaskMessageBuilder),  # type: ignore[type-abstract]
        handlers=_load_group(ITEM_HANDLERS, ItemHandler),  # type: ignore[type-abstract]
    )
