"""Definitions no worker could ever run are refused at submit, over the REST API and the CLI.

Each is a 400 (the CLI: exit 2) whose message names the problem and what is allowed, and
nothing is created: no row, no workflow.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jobservice.jobs.status import MAX_DEFINITION_BYTES
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.support import API

NESTED_LIST = "[" * 5000 + "]" * 5000


def body(
    batch_type: str,
    definition: str,
    target: str = "local:noop",
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A PUT body of a BatchWorker task."""
    task_data: dict[str, Any] = {
        "batchType": batch_type,
        "batchDefinition": definition,
        "targetPipe": target,
    }
    if params is not None:
        task_data["taskMessageParams"] = params
    return {
        "name": "hostile",
        "task": {
            "taskClassifier": "BatchWorker",
            "taskApiVersion": 1,
            "taskData": task_data,
            "taskPipe": "batch-worker",
            "targetPipe": target,
        },
    }


HOSTILE = [
    # range
    ("range", "10-5", None, "ends before it starts"),
    ("range", "-5-5", None, "is not START-END or START-END/LEAF"),
    ("range", "0-1e12", None, "is not START-END or START-END/LEAF"),
    ("range", "0-1000000000000", None, "the most is 10,000,000,000"),
    ("range", "0-10/0", None, "LEAF must be from 1 to 100,000"),
    ("range", "0-10/-1", None, "is not START-END or START-END/LEAF"),
    ("range", "0-100/1000000000", None, "LEAF must be from 1 to 100,000"),
    ("range", "0-" + "9" * 30, None, "at most 9,223,372,036,854,775,807"),
    ("range", "\u0660-\u0665", None, "ASCII digits"),
    ("range", "0-\u00b2", None, "ASCII digits"),
    ("range", "a few items", None, "is not START-END"),
    ("range", "0-10\x00", None, "NUL"),
    # list
    ("list", NESTED_LIST, None, "nested more than 64 levels"),
    ("list", "[1, 2", None, "not a valid JSON array"),
    ("list", "[NaN]", None, "NaN"),
    ("list", "a\x00b", None, "NUL"),
    # jsonl
    ("jsonl", "../outside.jsonl", None, "outside the configured root"),
    ("jsonl", "/etc/passwd", None, "outside the configured root"),
    ("jsonl", "missing.jsonl", None, "does not exist"),
    ("jsonl", "pipe.jsonl", None, "is not a regular file"),
    ("jsonl", "tree", None, "is not a regular file"),
    ("jsonl", "ok.jsonl#a-b", None, "PATH#START-END"),
    ("jsonl", "ok.jsonl#5-2", None, "START not above END"),
    ("jsonl", "ok.jsonl#0-" + "9" * 30, None, "at most 9,223,372,036,854,775,807"),
    ("jsonl", "loop", None, "cannot be resolved"),
    # directory
    ("directory", "../..", None, "outside the configured root"),
    ("directory", "missing", None, "does not exist"),
    ("directory", "ok.jsonl", None, "is not a folder"),
    ("directory", '{"path": "tree", "files": [5, 2]}', None, "0 <= START <= END"),
    ("directory", '{"path": "tree", "files": [0.5, 1]}', None, "whole numbers"),
    # item handler params
    ("range", "0-10", {"sleepMillis": "1e12"}, "sleepMillis '1e12'"),
    ("range", "0-10", {"sleepMillis": "abc"}, "from 0 to 60,000"),
    ("range", "0-10", {"sleepMillis": "-1"}, "from 0 to 60,000"),
    ("range", "0-10", {"sleepMillis": "nan"}, "from 0 to 60,000"),
]


@pytest.mark.parametrize(
    ("batch_type", "definition", "params", "message"),
    HOSTILE,
    ids=[f"{case[0]}-{n}" for n, case in enumerate(HOSTILE)],
)
async def test_a_definition_no_worker_could_run_is_a_400_and_creates_nothing(
    http: httpx.AsyncClient,
    client: Client,
    partition: str,
    file_root: Path,
    batch_type: str,
    definition: str,
    params: dict[str, str] | None,
    message: str,
) -> None:
    # Given a file root with a good file, a folder, a FIFO and a symbolic link loop
    (file_root / "ok.jsonl").write_text('{"a": 1}\n')
    (file_root / "tree").mkdir()
    os.mkfifo(file_root / "pipe.jsonl")
    (file_root / "loop").symlink_to(file_root / "loop")
    target = "local:sleep" if params else "local:noop"
    job_id = unique("hostile")
    url = f"{API}/partitions/{partition}/jobs/{job_id}"

    response = await http.put(url, json=body(batch_type, definition, target, params))

    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    assert len(response.json()["message"]) < 1000
    assert (await http.get(url)).status_code == 404
    # and Temporal has no workflow of it, running or closed
    query = f"WorkflowId STARTS_WITH 'job/{partition}/'"
    assert (await client.count_workflows(query)).count == 0
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(f"job/{partition}/{job_id}").describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND


async def test_the_good_neighbours_of_the_hostile_definitions_are_accepted(
    http: httpx.AsyncClient, partition: str, file_root: Path
) -> None:
    # Given no worker serves this test's task queue: the jobs are created and wait
    (file_root / "ok.jsonl").write_text('{"a": 1}\n')
    (file_root / "tree").mkdir()
    good = [
        ("range", "0-100000000", None),
        ("range", "0-10/100000", None),
        ("list", "[" * 64 + "]" * 64, None),
        ("jsonl", "ok.jsonl#0-5", None),
        ("directory", '{"path": "tree", "files": [0, 1000]}', None),
        ("range", "0-10", {"sleepMillis": "60000"}),
    ]
    for batch_type, definition, params in good:
        url = f"{API}/partitions/{partition}/jobs/{unique('good')}"
        target = "local:sleep" if params else "local:noop"
        response = await http.put(url, json=body(batch_type, definition, target, params))
        assert response.status_code == 201, (definition, response.text)
        assert (await http.get(url)).status_code == 200


def one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2 with one line on stderr that names ``message``, and no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0], lines[0]


def submit_file(settings: Settings, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return processes.run(
        settings, ["submit", path, "--job-id", unique("cli")], timeout=30, extra_env=env
    )


async def test_the_cli_refuses_a_definition_no_worker_could_run(
    settings: Settings, file_root: Path
) -> None:
    args = ["submit", "--job-id", unique("cli"), "--batch-type", "range", "--target-pipe",
            "local:noop", "--definition"]  # fmt: skip
    env = {"JOBSERVICE_FILE_ROOT": str(file_root)}
    for definition, message in [
        ("10-5", "ends before it starts"),
        ("0-" + "9" * 30, "at most 9,223,372,036,854,775,807"),
        ("\u0660-\u0665", "ASCII digits"),
    ]:
        result = await asyncio.to_thread(processes.run, settings, [*args, definition], 60, env)
        one_line_error(result, message)
    sleepy = await asyncio.to_thread(
        processes.run,
        settings,
        [*args, "0-10", "--target-pipe", "local:sleep", "--param", "sleepMillis=1e12"],
        60,
        env,
    )
    one_line_error(sleepy, "sleepMillis '1e12' is not a number of milliseconds from 0 to 60,000")


async def test_the_cli_refuses_job_files_that_are_not_text_or_not_files(
    settings: Settings, tmp_path: Path
) -> None:
    binary = tmp_path / "job.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    fifo = tmp_path / "job.fifo"
    os.mkfifo(fifo)
    large = tmp_path / "large.json"
    large.write_text('{"batchDefinition": "' + "x" * (2 * MAX_DEFINITION_BYTES) + '"}')
    # Each alias doubles what the YAML stands for: 2**40 items from a few lines of text
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        "a0: &a0 [x, x]\n"
        + "".join(f"a{n}: &a{n} [*a{n - 1}, *a{n - 1}]\n" for n in range(1, 40))
        + "batchType: list\nbatchDefinition: *a39\ntargetPipe: local:noop\n"
    )

    for path, message in [
        (str(binary), "is not UTF-8 text"),
        ("/dev/zero", "is not a regular file"),
        (str(fifo), "is not a regular file"),
        (str(tmp_path), "is not a regular file"),
        (str(tmp_path / "missing.yaml"), "cannot read"),
        (str(large), f"larger than {MAX_DEFINITION_BYTES + 65536:,} bytes"),
        (str(bomb), "aliases"),
    ]:
        result = await asyncio.to_thread(submit_file, settings, path)
        one_line_error(result, message)


def run_on_zeros(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` with an endless stdin."""
    with open("/dev/zero", "rb") as zeros:
        return subprocess.run(
            command, stdin=zeros, env=env, capture_output=True, text=True, timeout=30, check=False
        )


async def test_the_cli_reads_a_job_from_stdin_but_no_more_than_a_job_file(
    settings: Settings,
) -> None:
    job = {"batchType": "range", "batchDefinition": "0-10", "targetPipe": "local:noop"}
    command = [*processes.COMMAND, "submit", "-", "--job-id", unique("stdin"), "--json"]
    env = processes.environment(settings)

    given = await asyncio.to_thread(
        subprocess.run,
        command,
        input=yaml.safe_dump(job),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    endless = await asyncio.to_thread(run_on_zeros, command, env)

    assert given.returncode == 0, given.stderr
    one_line_error(endless, "larger than")


async def test_unreadable_settings_are_a_one_line_error_naming_the_variable(
    settings: Settings,
) -> None:
    for name, value, message in [
        ("JOBSERVICE_API__KEYS", "not json", "JOBSERVICE_API__KEYS is not valid JSON"),
        ("JOBSERVICE_ENGINE__CHUNK_SIZE", "0", "JOBSERVICE_ENGINE__CHUNK_SIZE"),
    ]:
        result = await asyncio.to_thread(
            processes.run, settings, ["status", "x"], 30, {name: value}
        )
        one_line_error(result, message)
