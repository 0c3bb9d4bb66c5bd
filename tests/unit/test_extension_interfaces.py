"""Where a plugin author finds the extension interfaces: all in jobservice.plugin, under the
names plugins have imported them by before, and put to work by the example plugin package."""

from __future__ import annotations

import subprocess
import sys

import pytest

import jobservice
from examples.customer_plugins import CUSTOMERS, CustomerIds, CustomerMessageBuilder, IndexHandler
from jobservice import messages, plugin
from jobservice.activities.counting import CountingServices
from jobservice.errors import BatchDefinitionError
from jobservice.messages import TaskMessage


@pytest.mark.parametrize("name", ["TaskMessageBuilder", "ItemHandler"])
def test_builder_and_handler_interfaces_are_the_same_wherever_they_are_imported_from(
    name: str,
) -> None:
    home = getattr(plugin, name)
    with pytest.warns(DeprecationWarning, match=f"messages.{name} has moved"):
        assert getattr(messages, name) is home
    assert getattr(jobservice, name) is home


@pytest.mark.parametrize(
    "first, second", [("plugin", "messages"), ("messages", "plugin")], ids=["plugin", "messages"]
)
def test_a_plugin_may_import_either_module_first(first: str, second: str) -> None:
    # A fresh interpreter: neither order may fail (the old names only warn).
    probe = (
        f"from jobservice.{first} import ItemHandler, TaskMessageBuilder\n"
        f"from jobservice.{second} import ItemHandler as H, TaskMessageBuilder as B\n"
        "assert (H, B) == (ItemHandler, TaskMessageBuilder)\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


def test_the_example_plugin_package_splits_builds_and_handles_a_job() -> None:
    # Given the example package's plugin, builder and handler, as a worker would run them
    plugin, builder, handler = CustomerIds(), CustomerMessageBuilder(), IndexHandler()
    top = CountingServices(sub_batch_end=10)
    plugin.process_batch(top, "all", "customer", {})
    items = []
    for region in top.sub_batches:
        services = CountingServices(item_end=10)
        plugin.process_batch(services, region, "customer", {})
        items += services.items

    # When each item becomes a task message and the handler takes it
    for number, item in enumerate(items, start=1):
        spec = builder.build(item, {"region": "any"})
        handler.handle(
            TaskMessage(
                f"p:j.{number}",
                spec.task_classifier,
                spec.task_api_version,
                spec.task_data,
                "local:index",
                "p:j",
            ),
            {},
        )

    # Then every customer is indexed once, in the plugin's order
    assert top.sub_batches == list(CUSTOMERS)
    assert handler.indexed == [c for region in CUSTOMERS.values() for c in region]
    with pytest.raises(BatchDefinitionError, match="not all nor one of"):
        plugin.check_definition("mars", {})
