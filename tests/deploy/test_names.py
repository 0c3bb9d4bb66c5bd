"""Every ``JOBSERVICE_*`` variable deploy/ names is one the settings read, and the checker of
command lines refuses what the CLI refuses."""

from __future__ import annotations

import re

import pytest

from jobservice.settings import Settings
from tests.deploy.names import command_problem, setting_variables
from tests.deploy.tools import DEPLOY

VARIABLE = re.compile(r"JOBSERVICE_[A-Z0-9_]*[A-Z0-9]")


def test_every_jobservice_variable_named_in_deploy_is_a_setting() -> None:
    known = setting_variables()
    named: dict[str, set[str]] = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            for name in VARIABLE.findall(path.read_text()):
                named.setdefault(name, set()).add(str(path.relative_to(DEPLOY)))
    assert len(named) >= 10, "deploy/ sets few settings; is the pattern right?"
    unknown = {name: sorted(paths) for name, paths in named.items() if name not in known}
    assert unknown == {}


def test_the_variables_are_those_pydantic_settings_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    known = setting_variables()
    assert "JOBSERVICE_TEMPORAL__ADDRESS" in known
    assert "JOBSERVICE_WORKER_SHUTDOWN_GRACE_SECONDS" in known
    assert "JOBSERVICE_API__KEYS" in known
    assert "JOBSERVICE_TEMPORAL_ADDRESS" not in known
    assert "JOBSERVICE_WORKER__SHUTDOWN_GRACE_SECONDS" not in known
    # The names really set what they say: one nested, one at the top.
    monkeypatch.setenv("JOBSERVICE_TEMPORAL__ADDRESS", "temporal.example:7233")
    monkeypatch.setenv("JOBSERVICE_WORKER_SHUTDOWN_GRACE_SECONDS", "12.5")
    settings = Settings()
    assert settings.temporal.address == "temporal.example:7233"
    assert settings.worker_shutdown_grace_seconds == 12.5


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["worker", "--no-tracking"], None),
        (["db", "upgrade"], None),
        (["--help"], None),
        (["workers"], "has no command 'workers'"),
        (["worker", "--no-trackin"], "No such option: --no-trackin"),
        (["tracking", "--no-tracking"], "No such option: --no-tracking"),
        (["db"], "needs a subcommand"),
        (["api", "extra"], "unexpected extra argument"),
    ],
)
def test_command_lines_are_checked_as_the_cli_parses_them(
    argv: list[str], problem: str | None
) -> None:
    found = command_problem(argv)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found
