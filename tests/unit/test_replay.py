"""Workflows of this version replay the histories of jobs that an earlier version ran.

A worker of a new version takes over the jobs the old one left running: it replays each
workflow's history, and a change in what the workflow code decides, without a patch, is a
nondeterminism error that stalls the job. The histories in ``histories/<commit>/`` were
recorded from that commit's workers on the embedded Temporal: ``local`` is a finished
4-batch ``local:sleep`` job of 2,000 items in chunks of 100; ``queue`` a job to a queue
nobody answered, with 100 items out when it was recorded (its workflows still running).
``paused`` (paused a third of the way, resumed, Completed), ``cancelled`` and ``continued``
(batches that continued as new; a ``-run<n>`` file each run) are 4 batches of 500 items,
recorded by ``python -m tests.unit.histories.record``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from jobservice.processes.worker import workflow_runner
from jobservice.workflows.batch import BatchWorkflow
from jobservice.workflows.job import JobWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*/*.json"))
TEXTS = {path: path.read_text() for path in HISTORIES}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_a_history_of_an_earlier_version_replays(path: Path) -> None:
    workflow_id = path.stem.partition("-run")[0].replace("_", "/")
    history = WorkflowHistory.from_json(workflow_id, TEXTS[path])
    replayer = Replayer(
        workflows=[JobWorkflow, BatchWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )

    await replayer.replay_workflow(history)


def test_there_are_histories_of_running_and_finished_jobs() -> None:
    assert {p.stem for p in HISTORIES} >= {"job_default_local", "job_default_queue"}
