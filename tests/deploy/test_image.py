"""deploy/Dockerfile: lint, build context and what the image runs, checked without Docker."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.dockerfile import Instruction, ignore_rules, ignored, instructions
from tests.deploy.names import command_problem
from tests.deploy.tools import DOCKERFILE, REPO, hadolint

EXACT_TAG = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*$")


def _instructions() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def _final_stage() -> list[Instruction]:
    found = _instructions()
    last_from = max(index for index, each in enumerate(found) if each.keyword == "FROM")
    return found[last_from:]


def test_the_dockerfile_passes_hadolint() -> None:
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_refuses_an_unpinned_base_image(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("python:3.12.12-slim-bookworm", "python"))
    done = hadolint(broken)
    assert done.returncode != 0
    assert "DL3006" in done.stdout  # "Always tag the version of an image explicitly"


def test_every_copy_source_is_in_the_build_context() -> None:
    rules = ignore_rules((REPO / ".dockerignore").read_text())
    sources = [
        source
        for each in _instructions()
        if each.keyword == "COPY"
        for source in each.copy_sources()
    ]
    assert sources, "the build copies nothing from the repository"
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source, rules), f"COPY {source}: .dockerignore leaves it out"


def test_the_build_context_leaves_out_the_virtual_environment_data_and_caches() -> None:
    rules = ignore_rules((REPO / ".dockerignore").read_text())
    for path in (
        ".venv/bin/python",
        ".jobservice/jobs.db",
        ".git/HEAD",
        ".pytest_cache/README.md",
        ".mypy_cache/3.11/x.json",
        "tests/unit/test_models.py",
        "jobservice/__pycache__/settings.cpython-312.pyc",
    ):
        assert ignored(path, rules), f"{path} would be sent to the build"
    assert not ignored("jobservice/db/migrations/env.py", rules)


def test_the_final_stage_copies_only_the_built_environment() -> None:
    # Whatever the build needed (pip, a compiler, the sources) stays in the builder stage.
    copies = [each for each in _final_stage() if each.keyword in ("COPY", "ADD")]
    assert copies
    for each in copies:
        assert each.arguments.startswith("--from=builder "), each.arguments


def test_the_image_starts_from_an_exact_base_as_a_non_root_user() -> None:
    bases = [each.arguments.split()[0] for each in _instructions() if each.keyword == "FROM"]
    assert len(bases) >= 2, "a build stage and a final stage"
    for base in bases:
        assert EXACT_TAG.match(base), f"FROM {base}: not an exact version"
    final = _final_stage()
    users = [each.arguments for each in final if each.keyword == "USER"]
    assert users, "the final stage runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: Kubernetes checks a numeric uid"
    environment = " ".join(each.arguments for each in final if each.keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in environment
    assert any(each.keyword == "WORKDIR" for each in final)
    exposed = {
        port for each in final if each.keyword == "EXPOSE" for port in each.arguments.split()
    }
    assert exposed == {"8080", "9400"}


def test_every_command_the_image_runs_is_a_cli_command() -> None:
    final = _final_stage()
    entrypoint = [each.exec_form() for each in final if each.keyword == "ENTRYPOINT"][-1]
    default = [each.exec_form() for each in final if each.keyword == "CMD"][-1]
    assert entrypoint == ["jobservice"]
    assert default == ["worker"]
    commands = [default] + [
        arguments
        for each in _instructions()
        if each.keyword == "RUN"
        for arguments in each.commands_of("jobservice")
    ]
    for arguments in commands:
        assert command_problem(arguments) is None, command_problem(arguments)
