"""Jobs of each built-in batch type run to Completed with exact counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.errors import InvalidJobError, JobNotFoundError
from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from tests.conftest import unique
from tests.integration.handlers import RecordingHandler
from tests.integration.support import closed_runs, job, run_to_end


async def test_recursive_range_job_processes_every_item_once(
    service: JobService, worker: Worker, recorder: RecordingHandler, client: Client
) -> None:
    # Given a range of 5,000 items with leaves of 200: ten sub-ranges of 500, each split
    # again into leaves of 200, 200 and 100 items
    job_id = unique("range")

    done = await run_to_end(service, job_id, job("range", "0-5000/200"))

    assert done.status is JobStatus.COMPLETED
    assert done.counts.total == 5000
    assert done.counts.completed == 5000
    assert done.counts.failed == 0
    assert done.counts.in_flight == 0
    assert done.percentage_complete == 100
    assert set(recorder.seen) == set(range(5000))
    assert max(recorder.seen.values()) == 1
    # the tree really was split: sub-batches ran as child workflows, all of them finished
    runs = await closed_runs(client, "default", job_id)
    assert len(runs) > 10
    assert {status for _, status in runs} == {"COMPLETED"}
    # items carry the reference system's task ids: partition:job.<batch path>.<item number>
    task_ids = set(recorder.task_ids)
    assert len(task_ids) == 5000
    assert {f"default:{job_id}.1.1.1", f"default:{job_id}.1.1.200"} <= task_ids
    assert f"default:{job_id}.1.1.201" not in task_ids
    assert f"default:{job_id}.10.3.100" in task_ids


async def test_list_job_takes_a_json_array(
    service: JobService, worker: Worker, recorder: RecordingHandler
) -> None:
    # Given 8,000 ids (104 kB): eight sub-lists of 13 kB, more than one 64 kB page of them
    ids = [f"doc-{n:05d}" for n in range(8_000)]

    done = await run_to_end(service, unique("list"), job("list", json.dumps(ids)))

    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed) == (8_000, 8_000)
    assert set(recorder.seen) == set(ids)


async def test_jsonl_job_counts_every_line_and_fails_the_garbled_one(
    service: JobService, worker: Worker, recorder: RecordingHandler, file_root: Path
) -> None:
    # Given a file over the 1 MiB leaf (so it splits by byte range), with blank lines
    # and one line that is not JSON
    lines = [json.dumps({"n": n, "pad": "x" * 40}) for n in range(25_000)]
    lines.insert(100, "")
    lines.insert(12_345, "{not json")
    (file_root / "records.jsonl").write_text("\n".join(lines) + "\n")

    done = await run_to_end(
        service, unique("jsonl"), job("jsonl", "records.jsonl", failure_tolerance="1")
    )

    assert done.status is JobStatus.COMPLETED
    assert (done.counts.completed, done.counts.failed) == (25_000, 1)
    assert done.counts.total == 25_001
    assert len(recorder.seen) == 25_000
    assert max(recorder.seen.values()) == 1
    assert "is not JSON" in done.failures[0].failure_message
    assert "records.jsonl" in done.failures[0].failure_message


async def test_directory_job_checksums_a_tree(
    service: JobService, worker: Worker, file_root: Path
) -> None:
    # Given a tree with nested folders, a folder of 1,205 files (split into slices),
    # and one file whose checksum sidecar is wrong
    tree = file_root / "tree"
    for folder in ("a", "a/b", "a/b/c", "d"):
        (tree / folder).mkdir(parents=True)
        for n in range(7):
            (tree / folder / f"f{n}.txt").write_text(f"{folder} {n}")
    for n in range(1205):
        (tree / "d" / f"g{n:04d}.bin").write_bytes(bytes([n % 256]) * 10)
    (tree / "a" / "f0.txt.sha256").write_text("0" * 64 + "  f0.txt\n")
    files = sum(1 for p in tree.rglob("*") if p.is_file())

    done = await run_to_end(
        service,
        unique("dir"),
        job("directory", "tree", target_pipe="local:checksum", failure_tolerance="1"),
    )

    assert done.status is JobStatus.COMPLETED
    assert done.counts.total == files == 4 * 7 + 1205 + 1
    assert (done.counts.completed, done.counts.failed) == (files - 1, 1)
    assert "checksum mismatch for tree/a/f0.txt" in done.failures[0].failure_message


async def test_directory_outside_the_root_is_refused(
    service: JobService, worker: Worker, file_root: Path
) -> None:
    job_id = unique("dir")

    with pytest.raises(InvalidJobError, match="outside the configured root"):
        await service.submit(job_id, job("directory", "../..", "local:noop"))

    with pytest.raises(JobNotFoundError):
        await service.get(job_id)
