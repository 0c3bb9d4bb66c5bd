"""The ``jobservice`` command as a user runs it: JSON output and exit codes."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import yaml
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from jobservice.jobs.status import DEFAULT_PARTITION
from jobservice.jobs.taskids import workflow_id
from jobservice.service.job_service import JobService
from jobservice.settings import Settings
from tests.conftest import unique
from tests.integration import processes
from tests.integration.support import eventually, job


def submit_args(job_id: str, definition: str, pipe: str, *extra: str) -> list[str]:
    """``jobservice submit`` of a range job."""
    return ["submit", "--job-id", job_id, "--batch-type", "range", "--definition", definition,
            "--target-pipe", pipe, *extra]  # fmt: skip


def parse(output: str) -> dict[str, object]:
    body = json.loads(output)
    assert isinstance(body, dict)
    return body


async def test_submit_wait_json_prints_the_job_and_exits_0(
    settings: Settings, worker: Worker
) -> None:
    job_id = unique("cli")

    result = await asyncio.to_thread(
        processes.run,
        settings,
        submit_args(
            job_id,
            "0-3000",
            "local:noop",
            "--param",
            "a=1",
            "--label",
            "team=x",
            "--wait",
            "--json",
        ),
    )

    assert result.returncode == 0, result.stderr
    job = parse(result.stdout)
    assert (job["id"], job["partition"], job["status"]) == (job_id, "default", "Completed")
    assert job["percentageComplete"] == 100
    assert job["counts"] == {"total": 3000, "completed": 3000, "failed": 0, "inFlight": 0}
    assert job["failures"] == []
    assert job["labels"] == {"team": "x"}

    status = await asyncio.to_thread(processes.run, settings, ["status", job_id, "--json"])
    assert status.returncode == 0
    assert parse(status.stdout)["counts"] == job["counts"]

    listed = await asyncio.to_thread(
        processes.run, settings, ["list", "--status", "Completed", "--json"]
    )
    assert job_id in {j["id"] for j in json.loads(listed.stdout)}


async def test_a_job_file_and_a_failed_job_exit_1(
    settings: Settings, worker: Worker, tmp_path: Path, file_root: Path
) -> None:
    # Given a YAML job file whose one item fails: a file whose checksum is not the one given
    (file_root / "docs").mkdir()
    (file_root / "docs" / "a.txt").write_text("a")
    (file_root / "docs" / "a.txt.sha256").write_text("0" * 64)
    path = tmp_path / "job.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "broken",
                "batchType": "directory",
                "batchDefinition": "docs",
                "targetPipe": "local:checksum",
            }
        )
    )

    result = await asyncio.to_thread(
        processes.run,
        settings,
        ["submit", str(path), "--job-id", unique("cli"), "--wait", "--json"],
        120,
        {"JOBSERVICE_FILE_ROOT": str(file_root)},
    )

    assert result.returncode == 1, result.stderr
    job = parse(result.stdout)
    assert job["status"] == "Failed"
    failures = job["failures"]
    assert isinstance(failures, list)
    for failure in failures:
        assert set(failure) == {"failureId", "failureTime", "failureSource", "failureMessage"}
    # the item's own failure, besides the job's, which says it failed for it
    [item] = [f for f in failures if f["failureSource"] == "item handler local:checksum"]
    assert "checksum mismatch for docs/a.txt" in item["failureMessage"]


async def test_watch_exits_3_when_the_job_is_cancelled(
    settings: Settings, worker: Worker, service: JobService
) -> None:
    job_id = unique("cli")
    submitted = await asyncio.to_thread(
        processes.run,
        settings,
        submit_args(job_id, "0-100000", "local:sleep", "--param", "sleepMillis=5"),
    )
    assert submitted.returncode == 0, submitted.stderr
    watcher = processes.start(settings, "watch", job_id)

    async def started() -> bool:
        return (await service.get(job_id)).counts.completed > 0

    await eventually(started)
    cancelled = await asyncio.to_thread(processes.run, settings, ["cancel", job_id, "--json"])
    assert cancelled.returncode == 0, cancelled.stderr
    out, err = await asyncio.to_thread(watcher.communicate, timeout=60)

    assert watcher.returncode == 3, err
    assert "Cancelled" in out
    # a cancelled job cannot be paused: exit 2, with the reason
    paused = await asyncio.to_thread(processes.run, settings, ["pause", job_id])
    assert paused.returncode == 2
    assert "Cancelled" in paused.stderr


async def test_errors_have_their_own_exit_codes(settings: Settings, worker: Worker) -> None:
    unknown = await asyncio.to_thread(processes.run, settings, ["status", unique("none"), "--json"])
    refused = await asyncio.to_thread(
        processes.run,
        settings,
        [
            "submit",
            "--job-id",
            unique("cli"),
            "--batch-type",
            "nope",
            "--definition",
            "1",
            "--target-pipe",
            "local:noop",
        ],
    )
    unreachable = await asyncio.to_thread(
        processes.run,
        settings.model_copy(
            update={"temporal": settings.temporal.model_copy(update={"address": "127.0.0.1:1"})}
        ),
        ["status", "x"],
    )

    assert (unknown.returncode, refused.returncode, unreachable.returncode) == (4, 2, 5)
    assert "no job" in unknown.stderr
    assert "unknown batch type 'nope'; known:" in refused.stderr
    assert "cannot reach Temporal" in unreachable.stderr


async def test_submit_after_waits_for_the_prerequisite(settings: Settings, worker: Worker) -> None:
    first, then = unique("first"), unique("then")
    waiting = await asyncio.to_thread(
        processes.run,
        settings,
        submit_args(then, "0-10", "local:noop", "--after", first, "--delay", "1", "--json"),
    )
    assert waiting.returncode == 0, waiting.stderr
    assert parse(waiting.stdout)["status"] == "Waiting"

    done = await asyncio.to_thread(
        processes.run, settings, submit_args(first, "0-5", "local:noop", "--wait", "--json")
    )
    assert parse(done.stdout)["status"] == "Completed"
    watched = await asyncio.to_thread(processes.run, settings, ["watch", then])
    assert watched.returncode == 0, watched.stdout
    assert "Completed" in watched.stdout


async def test_delete_removes_a_running_job_and_an_unknown_one_exits_4(
    settings: Settings, worker: Worker, client: Client
) -> None:
    job_id = unique("deleted")
    sleepy = submit_args(job_id, "0-100000", "local:sleep", "--param", "sleepMillis=5")
    submitted = await asyncio.to_thread(processes.run, settings, sleepy)
    assert submitted.returncode == 0, submitted.stderr

    deleted = await asyncio.to_thread(processes.run, settings, ["delete", job_id])
    again = await asyncio.to_thread(processes.run, settings, ["delete", job_id])
    status = await asyncio.to_thread(processes.run, settings, ["status", job_id])

    assert (deleted.returncode, deleted.stdout.strip()) == (0, f"job {job_id}: deleted")
    assert (again.returncode, status.returncode) == (4, 4)
    assert f"no job {job_id!r}" in again.stderr
    # and nothing of it runs on
    described = await client.get_workflow_handle(workflow_id(DEFAULT_PARTITION, job_id)).describe()
    assert described.status is WorkflowExecutionStatus.TERMINATED


async def test_failures_prints_every_failed_item_a_line_each(
    settings: Settings, worker: Worker, service: JobService
) -> None:
    # Given a job of which 1,500 items failed
    job_id = unique("clifail")
    await service.submit(
        job_id,
        job("range", "0-3000/1000", "local:fail-odd", failure_tolerance="100%"),
    )
    await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)

    jsonl, lines = await asyncio.gather(
        asyncio.to_thread(processes.run, settings, ["failures", job_id, "--jsonl"]),
        asyncio.to_thread(processes.run, settings, ["failures", job_id]),
    )

    assert jsonl.returncode == 0, jsonl.stderr
    listed = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(listed) == 1_500
    assert len({failure["failureId"] for failure in listed}) == 1_500
    assert set(listed[0]) == {"failureId", "failureTime", "failureSource", "failureMessage"}
    assert lines.returncode == 0, lines.stderr
    rows = lines.stdout.splitlines()
    assert len(rows) == 1_500
    task_id, _, source, message = rows[0].split("\t")
    assert (task_id, source) == (listed[0]["failureId"], "item handler local:fail-odd")
    assert "is odd" in message
    assert "1,500 failed items" in lines.stderr
    missing = await asyncio.to_thread(processes.run, settings, ["failures", unique("none")])
    assert missing.returncode == 4, missing.stderr


async def test_redrive_runs_the_failed_items_again_and_a_refusal_exits_2(
    settings: Settings, worker: Worker, service: JobService, file_root: Path
) -> None:
    # Given a finished checksum job with 3 failed files, whose sidecars are then fixed
    tree = file_root / unique("sums")
    tree.mkdir()
    for number in range(12):
        (tree / f"f{number}.txt").write_text(f"{number}\n")
        digest = hashlib.sha256(f"{number}\n".encode()).hexdigest()
        (tree / f"f{number}.txt.sha256").write_text(("0" * 64 if number % 4 else digest) + "\n")
    job_id = unique("cliredrive")
    definition = job("directory", tree.name, "local:checksum", failure_tolerance="100%")
    await service.submit(job_id, definition)
    first = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)
    assert first.counts.failed == 9
    for number in range(12):
        digest = hashlib.sha256(f"{number}\n".encode()).hexdigest()
        (tree / f"f{number}.txt.sha256").write_text(digest + "\n")

    redrive = await asyncio.to_thread(processes.run, settings, ["redrive", job_id, "--json"])

    assert redrive.returncode == 0, redrive.stderr
    assert parse(redrive.stdout)["redriveCount"] == 1
    done = await asyncio.wait_for(service.wait(job_id, interval=0.2), 120)
    assert (done.counts.completed, done.counts.failed) == (24, 0)
    status = await asyncio.to_thread(processes.run, settings, ["status", job_id])
    assert "redriven   once, last " in status.stdout
    again = await asyncio.to_thread(processes.run, settings, ["redrive", job_id])
    assert again.returncode == 2
    assert f"job {job_id!r} has no failed items to retry" in again.stderr
