"""Long batches continue as new, carrying only cursors and counts, and still count exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.jobs.status import JobStatus
from jobservice.service.job_service import JobService
from jobservice.settings import EngineSettings
from tests.conftest import unique
from tests.integration.handlers import RecordingHandler
from tests.integration.support import closed_runs, job, run_to_end


@pytest.fixture
def engine() -> EngineSettings:
    """A history limit of 200 events, so that a few hundred chunks or children go past it."""
    return EngineSettings(
        chunk_size=100,
        chunk_window=2,
        batch_window=4,
        sub_batch_page=50,
        history_limit=200,
        progress_interval_seconds=0.2,
    )


async def test_a_batch_of_many_chunks_continues_as_new_and_counts_exactly(
    service: JobService, worker: Worker, recorder: RecordingHandler, client: Client
) -> None:
    # Given one batch of 20,000 items: 200 chunks of 100, far past 200 history events
    job_id = unique("can-chunks")

    done = await run_to_end(service, job_id, job("range", "0-20000/20000"))

    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (20_000, 20_000, 0)
    assert set(recorder.seen) == set(range(20_000))
    assert max(recorder.seen.values()) == 1
    runs = await closed_runs(client, "default", job_id)
    assert [s for _, s in runs].count("CONTINUED_AS_NEW") >= 2
    assert [s for _, s in runs].count("COMPLETED") == 1


async def test_a_batch_of_many_sub_batches_continues_as_new_and_counts_exactly(
    service: JobService, worker: Worker, client: Client, file_root: Path
) -> None:
    # Given a folder of 300 sub-folders (six pages of 50 sub-batches), two files each
    for n in range(300):
        folder = file_root / "wide" / f"d{n:03d}"
        folder.mkdir(parents=True)
        (folder / "a").write_text("a")
        (folder / "b").write_text(str(n))
    job_id = unique("can-children")

    done = await run_to_end(service, job_id, job("directory", "wide", "local:checksum"))

    assert done.status is JobStatus.COMPLETED
    assert (done.counts.total, done.counts.completed) == (600, 600)
    root_runs = [s for w, s in await closed_runs(client, "default", job_id) if w.count("/") == 2]
    assert root_runs.count("CONTINUED_AS_NEW") >= 2
    assert root_runs.count("COMPLETED") == 1
