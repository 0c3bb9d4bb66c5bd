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
    """The modules ``path`` (a module of the package) imports, relative imports resolved, and
    for ``from a import b`` both ``a`` and ``a.b``, since ``b`` may be a module of its own."""
    # jobservice/workflows/job.py and jobservice/workflows/__init__.py: jobservice.workflows
    package = ".".join(path.relative_to(PACKAGE.parent).parts[:-1])
    return imports_of(path.read_text(), package)


def imports_of(source: str, package: str) -> set[str]:
    """The absolute names of what ``source``, a module of ``package``, imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in packages)


def test_relative_imports_are_read_as_the_modules_they_name() -> None:
    source = "from . import activities\nfrom ..db import store\nfrom .window import *\n"

    names = imports_of(source, "jobservice.workflows")

    assert names == {
        "jobservice.workflows",
        "jobservice.workflows.activities",
        "jobservice.db",
        "jobservice.db.store",
        "jobservice.workflows.window",
    }


@pytest.mark.parametrize("module", SERVICE_LAYER)
def test_the_service_layer_does_not_import_the_engine(module: str) -> None:
    engine = {name for name in imported(PACKAGE / module) if within(name, ENGINE)}
    assert not engine, f"{module} imports {sorted(engine)}"


@pytest.mark.parametrize("module", WORKFLOWS)
def test_workflows_take_their_contract_from_the_contract_module(module: str) -> None:
    elsewhere = {
        name for name in imported(PACKAGE / "workflows" / module) if within(name, NOT_FOR_WORKFLOWS)
    }
    assert not elsewhere, f"workflows/{module} imports {sorted(elsewhere)}"
