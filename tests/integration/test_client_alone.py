"""The Python client where only pydantic and httpx are installed, and this package with
``pip install --no-deps``: a service that submits and watches jobs needs nothing of the server.

The venv is built offline: its only packages are links to the installed distributions of
pydantic and httpx and of what they require, and this package as pip builds it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib.metadata import Distribution, distribution
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from temporalio.worker import Worker

from tests.conftest import unique
from tests.integration.test_client import api, partition, settings  # noqa: F401

PROJECT = Path(__file__).parents[2]
CLIENT_NEEDS = ("pydantic", "httpx")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")

DRIVE = """
import sys
import time

from jobservice.client import JobDefinition, JobServiceClient, JobStatus

url, partition, job_id = sys.argv[1:]
with JobServiceClient(url, partition=partition) as jobs:
    definition = JobDefinition(
        batch_type="range", batch_definition="0-25", target_pipe="local:record"
    )
    print("created", jobs.create_job(job_id, definition))
    deadline = time.monotonic() + 60
    while (status := jobs.job_status(job_id)) is not JobStatus.COMPLETED:
        if time.monotonic() > deadline:
            raise SystemExit(f"still {status} after 60 s")
        time.sleep(0.2)
    done = jobs.get_job(job_id)
    print(done.status, done.counts.completed, done.counts.total)
print(sorted(m for m in ("fastapi", "sqlalchemy", "temporalio", "aio_pika") if m in sys.modules))
"""


def requirement_closure(names: Iterable[str]) -> Iterator[Distribution]:
    """The installed distributions ``names`` need, themselves included (no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        dist = distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        yield dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)


def link_distribution(dist: Distribution, into: Path) -> None:
    """Link the top-level files and folders of ``dist``, its metadata among them, into ``into``."""
    for top in {file.parts[0] for file in dist.files or [] if file.parts[0] != ".."}:
        source = Path(str(dist.locate_file(top)))
        target = into / top
        if source.exists() and not target.exists() and top != "__pycache__":
            target.symlink_to(source)


@pytest.fixture(scope="module")
def python_alone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a venv holding only the client's needs and this package."""
    root = tmp_path_factory.mktemp("client-alone")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    needs = root / "needs"
    needs.mkdir()
    for dist in requirement_closure(CLIENT_NEEDS):
        link_distribution(dist, needs)
    # pip builds in the source tree: a copy of what the build reads keeps the checkout clean
    source = root / "source"
    shutil.copytree(PROJECT / "jobservice", source / "jobservice", ignore=IGNORED)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    package = root / "package"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*pip, "--no-build-isolation", "--target", package, source], check=True)
    (site / "client-alone.pth").write_text(f"{needs}\n{package}\n")
    return python


def alone(python: Path) -> dict[str, Any]:
    """How to run ``python`` so that it sees its venv alone: from the venv's folder (``-c``
    puts the working directory first on its path), with no ``PYTHONPATH``."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {"cwd": python.parents[1], "env": env}


def run(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, *args], capture_output=True, text=True, timeout=120, **alone(python)
    )


def test_the_venv_has_the_client_and_none_of_the_server(python_alone: Path) -> None:
    # The package is the one pip built, not the checkout
    where = run(python_alone, "-c", "import jobservice; print(jobservice.__file__)")
    assert where.returncode == 0, where.stderr
    assert not where.stdout.startswith(str(PROJECT / "jobservice"))

    # The client imports; the server cannot, for want of what only it needs
    assert run(python_alone, "-c", "from jobservice.client import JobServiceClient").returncode == 0
    server = run(python_alone, "-c", "import jobservice.web.app")
    assert server.returncode != 0
    assert "No module named 'fastapi'" in server.stderr


async def test_the_client_alone_drives_a_job_to_completed(
    python_alone: Path,
    api: str,  # noqa: F811
    worker: Worker,
    partition: str,  # noqa: F811
) -> None:
    job_id = unique("alone")
    process = await asyncio.create_subprocess_exec(
        python_alone,
        "-c",
        DRIVE,
        api,
        partition,
        job_id,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **alone(python_alone),
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines() == ["created True", "Completed 25 25", "[]"]
