"""A sub-batch of a job: its own workflow, a child of the batch that registered it."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import (
        BatchesRequest,
        BatchInput,
        BatchPage,
        Progress,
        ProgressReport,
    )
    from jobservice.execution.names import (
        BATCH_WORKFLOW,
        BATCHES_QUERY,
        KEPT_RESULTS_PATCH,
        PAUSE_SIGNAL,
        PROGRESS_QUERY,
        PROGRESS_SIGNAL,
        RESUME_SIGNAL,
        STEER_SIGNAL,
        TRACKING_SIGNAL,
    )
    from jobservice.execution.tracking import TrackingBatch
    from jobservice.jobs.steering import Steering
    from jobservice.workflows.failures import BatchFailedError, failure_details
    from jobservice.workflows.runner import BatchRunner


@workflow.defn(name=BATCH_WORKFLOW)
class BatchWorkflow:
    """Runs one sub-batch; reports its progress to its parent and returns its final counts."""

    @workflow.init
    def __init__(self, request: BatchInput) -> None:
        self._runner = BatchRunner(request)

    @workflow.run
    async def run(self, request: BatchInput) -> Progress:
        if request.carries_on and request.state is None:
            self._runner = await self._runner.carry_on()
        try:
            outcome = await self._runner.run(report=self._report)
        except asyncio.CancelledError:
            if not (self._runner.finished and workflow.patched(KEPT_RESULTS_PATCH)):
                # A cancelled workflow returns nothing: its parent keeps these counts instead.
                await self._report(self._runner.progress())
                raise
            outcome = self._runner.progress()  # done already: a cancel now changes nothing
        except BatchFailedError as failed:
            raise ApplicationError(
                failed.failure.failure_message,
                failure_details(failed.failure),
                type="BatchFailed",
                non_retryable=True,
            ) from None
        try:
            await workflow.wait_condition(workflow.all_handlers_finished)
        except asyncio.CancelledError:
            if isinstance(outcome, BatchInput) or not workflow.patched(KEPT_RESULTS_PATCH):
                raise
            # Its work is done: it returns its counts, and its parent has them.
        if isinstance(outcome, BatchInput):
            workflow.continue_as_new(outcome)
        return outcome

    async def _report(self, progress: Progress) -> None:
        parent = workflow.info().parent
        if parent is None:
            return
        report = ProgressReport(index=self._runner.path[-1], progress=progress)
        try:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                PROGRESS_SIGNAL, report
            )
        except FailureError:
            # The parent has closed (failed or cancelled); this batch is being cancelled too.
            workflow.logger.info("parent %s no longer takes progress", parent.workflow_id)

    @workflow.signal(name=PAUSE_SIGNAL)
    def pause(self) -> None:
        self._runner.set_paused(True)

    @workflow.signal(name=RESUME_SIGNAL)
    def resume(self) -> None:
        self._runner.set_paused(False)

    @workflow.signal(name=STEER_SIGNAL)
    def steer(self, steering: Steering) -> None:
        self._runner.steer(steering)

    @workflow.signal(name=PROGRESS_SIGNAL)
    def progress_report(self, report: ProgressReport) -> None:
        self._runner.child_progress(report)

    @workflow.signal(name=TRACKING_SIGNAL)
    def tracking(self, results: TrackingBatch) -> None:
        self._runner.record_results(results)

    @workflow.query(name=BATCHES_QUERY)
    def batches(self, request: BatchesRequest) -> BatchPage:
        return self._runner.batches(request)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return self._runner.progress()
