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
    "old, name, home",
    [
        ("jobservice.models", "JobDefinition", "jobservice.jobs.definition"),
        ("jobservice.models", "NewJob", "jobservice.jobs.definition"),
        ("jobservice.models", "JobView", "jobservice.jobs.job"),
        ("jobservice.models", "JobStatus", "jobservice.jobs.status"),
        ("jobservice.models", "FailureTolerance", "jobservice.jobs.tolerance"),
        ("jobservice.models", "is_local_pipe", "jobservice.jobs.pipes"),
        ("jobservice.models", "API_BASE_PATH", "jobservice.jobs.public"),
        ("jobservice.service", "JobService", "jobservice.service.job_service"),
        ("jobservice.service", "Submission", "jobservice.service.job_service"),
        ("jobservice.worker", "build_worker", "jobservice.processes.worker"),
        ("jobservice.registry", "installed", "jobservice.plugins.registry"),
        ("jobservice.registry", "Registry", "jobservice.plugins.registry"),
    ],
)
def test_an_old_public_path_still_has_its_names(old: str, name: str, home: str) -> None:
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"import it from {home}"):
        moved = getattr(module, name)

    assert moved is getattr(importlib.import_module(home), name)
