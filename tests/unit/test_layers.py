"""Which parts of the package may import which: the service layer stays above the engine, and
the workflows take what crosses Temporal from the contract alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import jobservice

PACKAGE = Path(jobservice.__file__).parent
SERVICE_LAYER = [
    *sorted(f"service/{p.name}" for p in (PACKAGE / "service").glob("*.py")),
    "temporal/orchestration.py",
    "jobs/ids.py",
]
"""Modules the CLI, the API and embedding applications go through."""
ENGINE = ("jobservice.activities", "jobservice.workflows")
"""What runs in workers only: the service layer reaches it through Temporal, never by import."""
WORKFLOWS = sorted(p.name for p in (PACKAGE / "workflows").glob("*.py"))
NOT_FOR_WORKFLOWS = (
    "jobservice.activities",
    "jobservice.db",
    "jobservice.temporal.tree",
    "jobservice.db.prerequisites",
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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of the package, and the modules of the package it imports: at the top, in
    functions and under ``TYPE_CHECKING`` alike. ``from package import module`` ties to the
    module alone: a package's ``__init__`` runs first whichever of its modules is imported,
    so that tie holds for every module and says nothing of the one at hand."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = imported(path) & modules.keys()
        packages = {other.rpartition(".")[0] for other in found}
        graph[name] = {other for other in found - packages if other != name}
        graph[name] |= {
            package
            for package in packages & found
            if package != name and _names_from(path, package) - modules.keys()
        }
    return graph


def _names_from(path: Path, package: str) -> set[str]:
    """What ``path`` takes from ``package`` by ``from package import ...``, as full names."""
    own = ".".join(path.relative_to(PACKAGE.parent).parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = own.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            if base == package:
                names |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {f"{alias.name}.*" for alias in node.names if alias.name == package}
    return names


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected groups of two or more modules
    (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                group.append(other)
                if other == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_circles_are_found_however_they_close() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}

    assert circles(graph) == [["a", "b", "c"]]


def test_the_package_has_no_import_circle() -> None:
    assert circles(import_graph()) == []


LAYERS = [
    ["jobservice.cli", "jobservice"],
    ["jobservice.web"],
    ["jobservice.processes"],
    ["jobservice.service", "jobservice.workflows", "jobservice.activities"],
    ["jobservice.plugins", "jobservice.db", "jobservice.temporal", "jobservice.tracking"],
    ["jobservice.plugin", "jobservice.rabbitmq", "jobservice.execution", "jobservice.client"],
    ["jobservice.messages", "jobservice.settings", "jobservice.jobs"],
    ["jobservice.errors", "jobservice.metrics", "jobservice._version", "jobservice._moved"],
]
"""The package's layers, top to bottom: a module imports from its own layer and those below,
never from one above (README, "Code map"). ``jobservice`` is the package's own ``__init__``;
the old modules that only say where their names went (``models``, ``worker``, ``registry``)
sit with what they point to, and import nothing of it."""
OLD_PATHS = {
    "jobservice.models": "jobservice.jobs",
    "jobservice.worker": "jobservice.processes",
    "jobservice.registry": "jobservice.plugins",
}


def layer_of(module: str) -> int:
    """The layer ``module`` belongs to: that of the longest name in ``LAYERS`` it is in."""
    module = OLD_PATHS.get(module, module)
    found = [
        (len(name), depth)
        for depth, names in enumerate(LAYERS)
        for name in names
        if module == name or module.startswith(f"{name}.")
    ]
    assert found, f"{module} is in no layer: add its package to LAYERS"
    return max(found)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} (layer {layer_of(module)}) imports {other} (layer {layer_of(other)})"
        for module, imports in graph.items()
        for other in imports
        if layer_of(other) < layer_of(module)
    )


def test_an_import_from_a_layer_above_is_found() -> None:
    graph = {"jobservice.jobs.job": {"jobservice.service.reads"}, "jobservice.web.app": set()}

    assert upward_imports(graph) == [
        "jobservice.jobs.job (layer 6) imports jobservice.service.reads (layer 3)"
    ]


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    assert upward_imports(import_graph()) == []


MOST_LINES = 450
"""A module longer than this holds more than one concern: split it."""


def test_no_module_of_the_package_is_over_the_limit() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert long == {}


FACES = {PACKAGE / "__init__.py", PACKAGE / "client" / "__init__.py"}
"""Packages whose ``__init__`` is what users import: the package's names (lazily) and the
Python client's."""


def test_every_package_init_is_empty_or_lazy() -> None:
    """Importing a package loads none of its modules: the CLI and the client stay quick."""
    eager = {
        module_name(path): sorted(found)
        for path in PACKAGE.rglob("__init__.py")
        if path not in FACES
        and (found := {n for n in top_level_imports(path) if n.startswith("jobservice.")})
        - {"jobservice._moved"}
    }
    assert eager == {}


def top_level_imports(path: Path) -> set[str]:
    """What a module imports when it is loaded: at its top, not in functions or under
    ``TYPE_CHECKING``."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names
