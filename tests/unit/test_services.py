"""A test whose service is missing fails, unless the person running it asked for skips."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTHING_LISTENS = "127.0.0.1:1"  # the port is reserved (tcpmux): a connection is refused at once

NEEDS_THE_SERVICES = """
import asyncio

from jobservice.settings import RabbitSettings
from tests.integration.database import postgres_schema
from tests.integration.rabbit import rabbit_connection


def test_needs_postgresql():
    with postgres_schema():
        pass


def test_needs_rabbitmq():
    asyncio.run(rabbit_connection(RabbitSettings(url="amqp://guest:guest@NOTHING_LISTENS/")))
""".replace("NOTHING_LISTENS", NOTHING_LISTENS)


def outcomes(tmp_path: Path, **environment: str) -> dict[str, int]:
    """Run the two tests above in their own pytest, with PostgreSQL and RabbitMQ pointed
    where nothing listens: how many ended how."""
    (tmp_path / "test_needs_the_services.py").write_text(NEEDS_THE_SERVICES)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"CI", "JOBSERVICE_TEST_ALLOW_SKIP", "PYTEST_ADDOPTS"}
    }
    env |= {
        "PYTHONPATH": str(REPO),
        "JOBSERVICE_TEST_POSTGRES": f"postgresql://postgres@{NOTHING_LISTENS}/test",
        **environment,
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pytest.ini"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = done.stdout.strip().splitlines()[-1]
    return {kind: int(count) for count, kind in re.findall(r"(\d+) (\w+)", summary)}


@pytest.mark.parametrize(
    "environment",
    [{}, {"JOBSERVICE_TEST_ALLOW_SKIP": "0"}],
    ids=["nothing set", "skips not asked for"],
)
def test_a_missing_postgresql_or_rabbitmq_fails_the_test(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    assert outcomes(tmp_path, **environment) == {"failed": 2}


def test_a_missing_service_is_a_skip_only_where_skips_were_asked_for(tmp_path: Path) -> None:
    assert outcomes(tmp_path, JOBSERVICE_TEST_ALLOW_SKIP="1") == {"skipped": 2}
