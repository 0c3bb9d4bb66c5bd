"""Where a plugin author finds the extension interfaces: all in jobservice.plugin, and under
the names plugins have imported them by before."""

from __future__ import annotations

import subprocess
import sys

import pytest

import jobservice
from jobservice import messages, plugin


@pytest.mark.parametrize("name", ["TaskMessageBuilder", "ItemHandler"])
def test_builder_and_handler_interfaces_are_the_same_wherever_they_are_imported_from(
    name: str,
) -> None:
    home = getattr(plugin, name)
    assert getattr(messages, name) is home
    assert getattr(jobservice, name) is home


@pytest.mark.parametrize(
    "first, second", [("plugin", "messages"), ("messages", "plugin")], ids=["plugin", "messages"]
)
def test_a_plugin_may_import_either_module_first(first: str, second: str) -> None:
    # A fresh interpreter: the modules import each other's names, and neither order may fail.
    probe = (
        f"from jobservice.{first} import ItemHandler, TaskMessageBuilder\n"
        f"from jobservice.{second} import ItemHandler as H, TaskMessageBuilder as B\n"
        "assert (H, B) == (ItemHandler, TaskMessageBuilder)\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
