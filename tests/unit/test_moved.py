"""Names that moved stay importable from their old module, with a warning that says where."""

from __future__ import annotations

import importlib

import pytest

from jobservice import messages, plugin


def test_a_moved_name_is_the_same_object_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="import it from jobservice.plugin"):
        from jobservice.messages import ItemHandler

    assert ItemHandler is plugin.ItemHandler


def test_a_name_that_never_was_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        messages.Nothing  # noqa: B018


@pytest.mark.parametrize(
    "name, home",
    [
        ("JobDefinition", "jobservice.jobs.definition"),
        ("NewJob", "jobservice.jobs.definition"),
        ("JobView", "jobservice.jobs.job"),
        ("JobStatus", "jobservice.jobs.status"),
        ("FailureTolerance", "jobservice.jobs.tolerance"),
        ("is_local_pipe", "jobservice.jobs.pipes"),
        ("API_BASE_PATH", "jobservice.jobs.public"),
    ],
)
def test_the_old_data_model_module_still_has_every_name(name: str, home: str) -> None:
    old = importlib.import_module("jobservice.models")
    with pytest.warns(DeprecationWarning, match=f"import it from {home}"):
        moved = getattr(old, name)

    assert moved is getattr(importlib.import_module(home), name)
