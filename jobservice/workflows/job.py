"""The job: the root of the batch tree, and the one workflow users pause, resume and cancel."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import (
        BatchesRequest,
        BatchInput,
        BatchPage,
        Progress,
        ProgressReport,
        SplitResult,
    )
    from jobservice.execution.job import (
        JobInput,
        JobKey,
        JobProgress,
        JobRecord,
        PipeWord,
        PrerequisiteQuery,
        PrerequisiteState,
        RedriveInput,
        RoundKey,
    )
    from jobservice.execution.names import (
        BATCHES_QUERY,
        JOB_WORKFLOW,
        NOTIFY_DEPENDENTS,
        NUMBER_ROUND,
        PAUSE_SIGNAL,
        PIPE_SIGNAL,
        PREREQUISITES_SIGNAL,
        PROGRESS_QUERY,
        PROGRESS_SIGNAL,
        RECORD_JOB,
        RESUME_SIGNAL,
        SETTLE_PREREQUISITES,
        TRACKING_SIGNAL,
        TUNE_UPDATE,
    )
    from jobservice.execution.tracking import TrackingBatch
    from jobservice.execution.tree import Word
    from jobservice.jobs.job import Failure
    from jobservice.jobs.status import JobStatus
    from jobservice.jobs.steering import Steering
    from jobservice.temporal.search import JOB_STATUS
    from jobservice.workflows.database import database
    from jobservice.workflows.failures import BatchFailedError
    from jobservice.workflows.rowkeeping import JobRowKeeping, job_progress
    from jobservice.workflows.runner import BatchRunner
    from jobservice.workflows.steering import changed, keep, tolerance_failure
    from jobservice.workflows.telling import tell_tree
    from jobservice.workflows.tracked import items_memo


@workflow.defn(name=JOB_WORKFLOW)
class JobWorkflow:
    """Runs the job's root batch, enforces its failure tolerance and keeps its status."""

    @workflow.init
    def __init__(self, request: JobInput) -> None:
        self._request = request
        self._redrive = request.redrive
        """Set in a redrive: the round's counts move the job's; its tolerance is judged once
        the round has ended (the job may have exceeded it before)."""
        self._ended = False
        self._runner = BatchRunner(
            BatchInput(
                context=request.context,
                definition=request.definition,
                paused=request.paused,
                state=request.state,
                steering=request.steering,
            ),
            stop_check=None if self._redrive else self._tolerance_exceeded,
            on_cancel=self._cancelling,
        )
        self._waiting = request.waits
        """Whether the job still waits for its prerequisites or its delay."""
        self._waiting_reason: str | None = None
        self._prerequisites_changed = False
        self._status = (
            JobStatus.PAUSED
            if request.paused
            else JobStatus.WAITING
            if self._waiting
            else JobStatus.ACTIVE
        )
        self._row = JobRowKeeping(
            partition=request.context.partition,
            job_id=request.context.job_id,
            failure_details=request.context.engine.failure_details,
            started_at=request.started_at,
            paused_seconds=request.paused_seconds,
            new_row=request.new_row,
            round=request.context.round,
        )
        if self._redrive is not None:  # its rate is of what it does
            redrive = self._redrive
            self._row.done_before = redrive.completed + redrive.failed
            if not redrive.carries_on:
                self._row.done_before -= redrive.items
        self._closing = False
        self._telling: set[asyncio.Task[None]] = set()
        self._tuning = asyncio.Lock()
        self._carried_on = request.state is not None
        """In a redrive that carries the tree on: whether its root has read where it stood."""

    @workflow.run
    async def run(self, request: JobInput) -> JobProgress:
        if self._status is JobStatus.PAUSED:
            self._row.paused_at = workflow.now()
        if self._waiting:
            self._set_status(self._status)
        recorder = asyncio.create_task(self._keep_row_current())
        try:
            if self._waiting:
                await self._wait_to_start(recorder)
            if self._row.started_at is None:
                self._row.started_at = workflow.now()
            if self._carries_on and not self._carried_on:
                self._runner = await self._runner.carry_on()
                self._carried_on = True
            outcome = await self._runner.run()
            if self._carries_on and not isinstance(outcome, BatchInput):
                await self._send_failed_items(recorder)  # the tree is done: now those
        except asyncio.CancelledError:
            self._finish(JobStatus.CANCELLED)
            await self._record_final(recorder, ended=True)
            raise
        except BatchFailedError as failed:
            await self._fail(recorder, failed.failure)
        if isinstance(outcome, BatchInput):
            await self._continue_as_new(
                recorder,
                JobInput(
                    context=request.context,
                    definition=request.definition,
                    state=outcome.state,  # paused and steered as the job is: see below
                    started_at=self._row.started_at,
                    paused_seconds=self._row.paused_total(workflow.now()),
                    redrive=request.redrive,
                ),
            )
        self._ended = True
        exceeded = self._tolerance_exceeded(self._progress()) if self._redrive else None
        if exceeded is not None:  # a redrive is judged by its tolerance once it has ended
            await self._fail(recorder, exceeded)
        final = self._finish(JobStatus.COMPLETED)
        await self._record_final(recorder, ended=True)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return final

    @property
    def _carries_on(self) -> bool:
        """Whether the run carries on the job's tree where it stopped, in a redrive."""
        return self._redrive is not None and self._redrive.carries_on

    async def _send_failed_items(self, recorder: asyncio.Task[None]) -> None:
        """Go on as the run of the round that sends the failed items again, its counts
        moving those the tree ended with; with none to send, the redrive is done."""
        context = self._request.context
        key = RoundKey(partition_id=context.partition, job_id=context.job_id, round=context.round)
        items = await database(NUMBER_ROUND, key, int)
        if not items:
            return
        progress = self._runner.progress()
        # The round's batch names its own items: numbered by their places in the round.
        memo = items_memo(context, SplitResult(sub_batches=[], sub_batch_total=0, item_total=items))
        await self._continue_as_new(
            recorder,
            JobInput(
                context=context.model_copy(update={"carries_on": False}),
                definition=self._request.definition,
                started_at=self._row.started_at,
                paused_seconds=self._row.paused_total(workflow.now()),
                redrive=RedriveInput(
                    round=context.round,
                    items=items,
                    total=progress.total,
                    completed=progress.completed,
                    failed=progress.failed,
                ),
            ),
            memo=memo,
        )

    async def _fail(self, recorder: asyncio.Task[None], failure: Failure) -> NoReturn:
        """End the job Failed for ``failure``, its row written, its workflow failed."""
        self._row.failures = [failure]
        final = self._finish(JobStatus.FAILED)
        await self._record_final(recorder, ended=True)
        raise ApplicationError(
            f"job {self._request.context.job_id} failed: {failure.failure_message}",
            final.model_dump(mode="json", by_alias=True),
            type="JobFailed",
            non_retryable=True,
        )

    # -- prerequisites and delay -----------------------------------------------------------

    async def _wait_to_start(self, recorder: asyncio.Task[None]) -> None:
        """Wait (Waiting) until every prerequisite is Completed, then for the delay. A
        prerequisite that failed or was cancelled fails the job (BatchFailedError)."""
        request = self._request
        check = timedelta(seconds=request.context.engine.prerequisite_check_seconds)
        while request.prerequisite_job_ids:
            self._prerequisites_changed = False
            state = await database(
                SETTLE_PREREQUISITES,
                PrerequisiteQuery(
                    partition_id=request.context.partition,
                    job_id=request.context.job_id,
                    prerequisite_job_ids=request.prerequisite_job_ids,
                ),
                PrerequisiteState,
            )
            if state.failure is not None:
                raise BatchFailedError(state.failure)
            if not state.waiting_for:
                break
            self._waiting_reason = state.reason()
            if workflow.info().is_continue_as_new_suggested():
                await self._continue_as_new(
                    recorder,
                    request.model_copy(update={"new_row": None}),
                )
            # Told when a prerequisite ends; read again now and then in case a word was lost.
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(lambda: self._prerequisites_changed, timeout=check)
        if request.delay:
            until = workflow.now() + timedelta(seconds=request.delay)
            self._waiting_reason = f"delayed until {until:%Y-%m-%d %H:%M:%S} UTC"
            await workflow.sleep(request.delay)
        self._waiting = False
        self._waiting_reason = None
        if self._status is JobStatus.WAITING:
            self._set_status(JobStatus.ACTIVE)
        # Time spent paused while waiting is not time the job ran.
        self._row.paused_seconds = 0.0
        if self._row.paused_at is not None:
            self._row.paused_at = workflow.now()

    # -- the job row -----------------------------------------------------------------------

    def _progress(self) -> Progress:
        progress = self._runner.progress()
        return job_progress(progress, self._redrive, read=self._carried_on, ended=self._ended)

    def _record(self, *, ended: bool = False) -> JobRecord:
        return self._row.record(
            self._status,
            self._progress(),
            waiting_reason=self._waiting_reason,
            now=workflow.now(),
            ended=ended,
        )

    async def _write(self, record: JobRecord) -> None:
        await database(RECORD_JOB, record, bool)
        self._row.wrote(record, workflow.now())

    async def _keep_row_current(self) -> None:
        """Write the row when the job changes: a status at once, counts at most once an
        interval (at once while paused). An idle job writes nothing."""
        interval = self._request.context.engine.progress_interval_seconds
        while True:
            await workflow.wait_condition(self._changed)
            if self._closing:
                return
            started = workflow.now()
            written = self._record()
            await self._write(written)
            left = interval - (workflow.now() - started).total_seconds()
            if left <= 0:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    functools.partial(self._due_before_interval, written.status), timeout=left
                )

    def _changed(self) -> bool:
        return self._closing or self._row.changed(self._record())

    def _due_before_interval(self, status: JobStatus) -> bool:
        """A change of status is written at once; so are a paused job's last counts, which come
        in a few reports as its tree stops, so that the row soon stands still."""
        if self._status is not status or self._closing:
            return True
        return self._status is JobStatus.PAUSED and self._changed()

    async def _record_final(self, recorder: asyncio.Task[None], *, ended: bool) -> None:
        """Let the recorder finish the write it is in (cancelling a local activity midway
        would surface as an activity error and fail the job), then write the last state; and
        if the job has ended, tell the jobs waiting for it."""
        self._closing = True
        await asyncio.gather(*self._telling)
        await recorder
        await self._write(self._record(ended=ended))
        if ended:
            context = self._request.context
            await database(
                NOTIFY_DEPENDENTS,
                JobKey(partition_id=context.partition, job_id=context.job_id),
                int,
            )

    async def _continue_as_new(
        self,
        recorder: asyncio.Task[None],
        next_run: JobInput,
        memo: dict[str, list[int]] | None = None,
    ) -> None:
        """Write the row, let handlers finish, and go on as a new run of ``next_run`` (with
        ``memo``, else the memo it has), paused and steered as the job is once they have."""
        await self._record_final(recorder, ended=False)
        await workflow.wait_condition(workflow.all_handlers_finished)
        while self._telling:  # a resume of a rate-limited job, begun meanwhile
            await asyncio.gather(*self._telling)
        now = {"paused": self._runner.paused, "steering": self._steering}
        workflow.continue_as_new(next_run.model_copy(update=now), memo=memo)

    def _tolerance_exceeded(self, progress: Progress) -> Failure | None:
        return tolerance_failure(self._steering, progress, self._request.context, workflow.now())

    @property
    def _steering(self) -> Steering:
        return self._runner.tuning.steering

    @workflow.update(name=TUNE_UPDATE)
    async def tune(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Change the job's steering (a JSON merge patch of it): kept in its row, and in force
        in its whole tree within moments. Its batches' pace starts again from now."""
        async with self._tuning:  # one change at a time, each from the one before
            steering = self._tuned(patch, ApplicationError)
            if steering != self._steering:
                rate_changed = steering.rate_limit != self._steering.rate_limit
                await keep(self._request.context, steering, free_pace=rate_changed)
                self._runner.steer(steering)
        return steering.public()

    @workflow.signal(name=PIPE_SIGNAL)
    async def pipe_changed(self, word: PipeWord) -> None:
        """The job's target pipe has a new limit (None: none), or its shares were dealt anew
        (a job joined it): the job's pace starts again from now, at its new share."""
        async with self._tuning:
            pipe = {"pipe_limit": word.limit, "pipe_epoch": word.epoch}
            steering = self._steering.model_copy(update=pipe)
            if not self._ended and steering != self._steering:
                await keep(self._request.context, steering)
                self._runner.steer(steering)

    @tune.validator
    def _tune_allowed(self, patch: dict[str, Any]) -> None:
        """Refuse what the job cannot take before it is written to the history."""
        if self._ended:
            raise ValueError("the job has ended; there is nothing left to tune")
        self._tuned(patch, ValueError)

    def _tuned(self, patch: dict[str, Any], refused: type[Exception]) -> Steering:
        judged = None if self._redrive else self._progress()  # a redrive: once it has ended
        return changed(self._steering, patch, self._request.context, judged, refused)

    def _set_status(self, status: JobStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([JOB_STATUS.value_set(status.value)])

    def _cancelling(self) -> None:  # it reads Cancelled at once, while its tree stops
        self._set_status(JobStatus.CANCELLED)
        self._tell_tree(Word.CANCEL)

    def _tell_tree(self, word: Word) -> None:
        self._later(tell_tree(self._request.context, word))  # see .telling

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the job; it ends before the job's workflow closes."""
        task = asyncio.create_task(work)
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    def _finish(self, status: JobStatus) -> JobProgress:
        self._ended = True
        self._row.paused_seconds = self._row.paused_total(workflow.now())
        self._row.paused_at = None
        self._row.finished_at = workflow.now()
        self._set_status(status)
        return self._row.snapshot(self._status, self._progress())

    @workflow.signal(name=PAUSE_SIGNAL)
    def pause(self) -> None:
        if self._status in (JobStatus.ACTIVE, JobStatus.WAITING):
            self._row.paused_at = workflow.now()
            self._set_status(JobStatus.PAUSED)
            self._runner.set_paused(True)
            self._tell_tree(Word.PAUSE)

    @workflow.signal(name=RESUME_SIGNAL)
    def resume(self) -> None:
        # Even when the job never took a pause in (its signal was lost with a failed call),
        # a resume lets the next write take the row out of Paused.
        self._row.resumed = True
        if self._status is JobStatus.PAUSED:
            self._row.paused_seconds = self._row.paused_total(workflow.now())
            self._row.paused_at = None
            self._set_status(JobStatus.WAITING if self._waiting else JobStatus.ACTIVE)
            if not self._steering.paced:
                self._runner.set_paused(False)
            else:
                self._later(self._resume_paced())

    async def _resume_paced(self) -> None:
        """Resume a rate-limited job: its pace starts again from now, before any batch's."""
        await keep(self._request.context, self._steering)
        if self._status is not JobStatus.PAUSED:  # not paused again meanwhile
            self._runner.set_paused(False)

    @workflow.signal(name=PREREQUISITES_SIGNAL)
    def prerequisites_changed(self) -> None:  # one has ended: read where they stand again
        self._prerequisites_changed = True

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
    def progress(self) -> JobProgress:
        return self._row.snapshot(self._status, self._progress())
