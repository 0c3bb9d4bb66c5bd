"""Which parts of the package may import which: the service layer stays above the engine, and
the workflows take what crosses Temporal from the contract alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import jobservice

PACKAGE = Path(jobservice.__file__).parent
SERVICE_LAYER = [
    "service.py",
    "validation.py",
    "orchestration.py",
    "reconciler.py",
    "reader.py",
    "health.py",
    "probes.py",
    "ids.py",
]
"""Modules the CLI, the API and embedding applications go through."""
ENGINE = ("jobservice.activities", "jobservice.workflows")
"""What runs in workers only: the service layer reaches it through Temporal, never by import."""
WORKFLOWS = sorted(p.name for p in (PACKAGE / "workflows").glob("*.py"))
NOT_FOR_WORKFLOWS = (
    "jobservice.activities",
    "jobservice.db",
    "jobservice.tree",
    "jobservice.prerequisites",
)
"""Where workflows once found parts of their contract; it is all in ``jobservice.execution``."""


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", SERVICE_LAYER)
def test_the_service_layer_does_not_import_the_engine(module: str) -> None:
    engine = {name for name in imported(PACKAGE / module) if name.startswith(ENGINE)}
    assert not engine, f"{module} imports {sorted(engine)}"


@pytest.mark.parametrize("module", WORKFLOWS)
def test_workflows_take_their_contract_from_the_contract_module(module: str) -> None:
    elsewhere = {
        name
        for name in imported(PACKAGE / "workflows" / module)
        if name.startswith(NOT_FOR_WORKFLOWS)
    }
    assert not elsewhere, f"workflows/{module} imports {sorted(elsewhere)}"
