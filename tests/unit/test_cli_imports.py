"""``jobservice --help`` answers without loading what only the commands that run need."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("temporalio", "fastapi", "sqlalchemy", "sqlmodel", "alembic", "aio_pika", "uvicorn")

PROBE = """
import json, sys
from typer.testing import CliRunner
from jobservice.cli.app import app
for args in (["--help"], ["submit", "--help"], ["status", "--help"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)))
"""


def test_help_imports_none_of_the_heavy_modules() -> None:
    probe = f"HEAVY = {HEAVY!r}\n" + PROBE
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(done.stdout) == []
