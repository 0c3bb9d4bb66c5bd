"""``jobservice --help`` and ``jobservice status`` answer without loading what only other
commands need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jobservice.db.engine import create_database_engine
from jobservice.db.schema import upgrade

HEAVY = ("temporalio", "fastapi", "sqlalchemy", "sqlmodel", "alembic", "aio_pika", "uvicorn")
NOT_FOR_STATUS = (
    "fastapi",
    "starlette",
    "uvicorn",
    "aio_pika",
    "alembic",
    "sqlmodel",
    "sqlalchemy",
    "jsonschema",
    "temporalio.client",
    "temporalio.worker",
    "jobservice.service.job_service",
    "jobservice.service.submit",
    "jobservice.service.control",
    "jobservice.service.bulk",
    "jobservice.activities",
    "jobservice.workflows",
    "jobservice.plugins",
)
"""What ``status`` does without: the REST API, the broker, migrations, the ORM mapping, job
types, Temporal's workflow client and worker, and the service layer's writing half with the
engine behind it."""

HELP_PROBE = """
import json, sys
from typer.testing import CliRunner
from jobservice.cli.app import app
for args in (["--help"], ["submit", "--help"], ["status", "--help"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)))
"""

STATUS_PROBE = """
import json, sys
from typer.testing import CliRunner
from jobservice.cli.app import app
result = CliRunner().invoke(app, ["status", "some-job"])
assert result.exit_code == 5 and "cannot reach Temporal" in result.output, result.output
print(json.dumps(sorted(m for m in sys.modules if m.startswith(NOT_FOR_STATUS))))
"""


def _loaded(probe: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_help_imports_none_of_the_heavy_modules() -> None:
    assert _loaded(f"HEAVY = {HEAVY!r}\n" + HELP_PROBE) == []


def test_status_imports_only_what_reading_a_job_needs(tmp_path: Path) -> None:
    # Given a job database at the current schema, and no Temporal where the command looks:
    # status goes as far as it can, to the connection
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    engine = create_database_engine(url)
    upgrade(engine)
    engine.dispose()
    env = {
        **os.environ,
        "JOBSERVICE_DATABASE__URL": url,
        "JOBSERVICE_TEMPORAL__ADDRESS": "127.0.0.1:1",
    }

    assert _loaded(f"NOT_FOR_STATUS = {NOT_FOR_STATUS!r}\n" + STATUS_PROBE, env) == []
