"""Importing the Python client loads nothing of the server: a service that only submits and
watches jobs pays for pydantic and httpx, not for FastAPI, a database or Temporal."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_ONLY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "sqlmodel",
    "temporalio",
    "aio_pika",
)
MOST_MODULES = 17
"""Modules of the package the client may load, itself included: the client and the job models
it reads and writes (steering and tolerance among them)."""

LOADED = """
import json, sys
import jobservice.client
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by_the_client() -> list[str]:
    """The modules a fresh interpreter holds once it has imported the client."""
    out = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", LOADED],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names: list[str] = json.loads(out)
    return names


def test_the_client_loads_nothing_of_the_server() -> None:
    loaded = loaded_by_the_client()

    server = [name for name in loaded if name.split(".")[0] in SERVER_ONLY]
    assert server == []
    own = [name for name in loaded if name.split(".")[0] == "jobservice"]
    assert len(own) <= MOST_MODULES, own
