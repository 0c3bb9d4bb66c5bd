"""The engine's contract: what crosses Temporal between the service, workflows and activities.

The names of workflows, activities, signals, queries and memos, and the models their inputs,
results and signals are made of: definitions, cursors and counts, never items. Workflows take
their contract from here alone, and activities implement the names defined here.

Running workflows replay their history against the code of the day, so no name here and no
field of a model may change. A model may move between modules: the pydantic data converter
(``jobservice.temporal``) writes a payload as the JSON of its fields, and names no class.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Base64Bytes, BaseModel, Field

from jobservice.models import Failure, FailureTolerance, JobBase, JobState, JobStatus
from jobservice.settings import EngineSettings
from jobservice.taskids import job_task_id

JOB_WORKFLOW = "JobWorkflow"
BATCH_WORKFLOW = "BatchWorkflow"
SPLIT_BATCH = "split_batch"
DISPATCH_ITEMS = "dispatch_items"
RECORD_JOB = "record_job"
SETTLE_PREREQUISITES = "settle_prerequisites"
NOTIFY_DEPENDENTS = "notify_dependents"
TELL_TREE = "tell_tree"
BROKER_UNAVAILABLE = "BrokerUnavailable"
PAUSE_SIGNAL = "pause"
RESUME_SIGNAL = "resume"
PROGRESS_SIGNAL = "progress"
TRACKING_SIGNAL = "tracking"
PREREQUISITES_SIGNAL = "prerequisites"
PROGRESS_QUERY = "progress"
"""What a job workflow answers with its JobProgress, and a batch workflow with its Progress."""
BATCHES_QUERY = "batches"
"""What a job or batch workflow answers, for a BatchesRequest, with a BatchPage: a page of
the child batches it runs, for browsing the tree a level at a time."""
TRACKING_REPORTS_PATCH = "tracking-reports"
"""Batches read the progress, retries and failure owners of tracking signals from here on."""
IN_FLIGHT_PATCH = "in-flight-in-hand"
"""Batches count in flight only the items published to a queue and not yet settled from here
on; before it, every item of their scheduled chunks. What they count decides when they report,
so a run begun before it counts as it did then."""
ITEMS_MEMO = "items"
"""The memo in which a batch workflow that sends items to a queue names their numbers, first
and last, so that the tracking consumer can tell a result for an item that never went out."""


class JobContext(BaseModel):
    """What every batch of a job needs to know; the same for the whole tree."""

    partition: str
    job_id: str
    batch_type: str
    task_message_type: str | None = None
    task_message_params: dict[str, str] = Field(default_factory=dict)
    target_pipe: str
    track_to: str | None = None
    """The ``trackTo`` of the job's task messages: the job task's ``targetPipe``, where
    tracking ends; None when that is null, and the output is not forwarded anywhere."""
    status_check_url: str | None = None
    """Where a worker asks the job's status, given when the API's public URL is set."""
    failure_tolerance: FailureTolerance = Field(default_factory=FailureTolerance)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    def task_id(self, path: list[int], item: int | None = None) -> str:
        return job_task_id(self.partition, self.job_id, path, item)


class SubBatch(BaseModel):
    """A sub-batch a plugin registered, and how many items the plugin expects in it."""

    definition: str
    estimate: int | None = None


class SplitInput(BaseModel):
    context: JobContext
    path: list[int]
    definition: str
    sub_batch_offset: int = 0
    sub_batch_limit: int


class SplitResult(BaseModel):
    """One page of a batch's sub-batches, and the totals of the whole batch."""

    sub_batches: list[SubBatch]
    sub_batch_total: int
    item_total: int
    estimate: int | None = None


class ChunkInput(BaseModel):
    """Items ``[start, end)`` of a batch (0-based, in registration order)."""

    context: JobContext
    path: list[int]
    definition: str
    sub_batch_total: int
    start: int
    end: int


class ChunkResult(BaseModel):
    """What a chunk did. ``processed`` may fall short of the chunk when it was paused.

    Items are completed or failed here (a local pipe), or ``forwarded`` to a queue and in
    flight until the tracking pipe reports them. ``refused`` are the batch indexes of items
    that failed before delivery (counted in ``failed``).
    """

    processed: int = 0
    completed: int = 0
    failed: int = 0
    forwarded: int = 0
    refused: list[int] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    held: bool = False
    """The job's row said it is paused or has ended, so the chunk stopped: the batch sends no
    more until it is told what happened, or a moment has passed."""

    def add(self, other: ChunkResult, limit: int) -> ChunkResult:
        return ChunkResult(
            processed=self.processed + other.processed,
            completed=self.completed + other.completed,
            failed=self.failed + other.failed,
            forwarded=self.forwarded + other.forwarded,
            refused=self.refused + other.refused,
            failures=(self.failures + other.failures)[:limit],
        )


class Progress(BaseModel):
    """The rolled-up counts of a batch and everything below it."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    in_flight_percent: int = 0
    """The sum of the percentages workers last reported for the items in flight: 200 items at
    50 % make 10,000."""
    retries: int = 0
    """Retries workers reported for the items."""
    splitting_complete: bool = False
    failures: list[Failure] = Field(default_factory=list)
    waiting: str | None = None
    """Why some of the tree is waiting (an unreachable broker), if it is."""


class TrackedResult(BaseModel):
    """One result, as signals of earlier versions carried them (see ``TrackingBatch``)."""

    number: int
    failed: bool = False
    failure: Failure | None = None


class TrackingBatch(BaseModel):
    """What the tracking consumer signals to one batch in one go: the numbers (in the batch) of
    the items that completed and of those that failed, the details of the first few failures,
    and the progress and retries of items still in flight. Bare numbers keep a signal of
    thousands small."""

    completed: list[int] = Field(default_factory=list)
    failed: list[int] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    failed_items: list[int] = Field(default_factory=list)
    """The number of the item each of ``failures`` is of. Empty in signals of earlier versions,
    whose failures' ids name their items; a worker's own failure id need not."""
    progressed: list[tuple[int, int]] = Field(default_factory=list)
    """(number, percentage) of items in flight: the last estimate of each, in whole percent."""
    retried: list[tuple[int, int | None]] = Field(default_factory=list)
    """(number, attempt) of items a worker tries again; None when it did not say which try."""
    results: list[TrackedResult] = Field(default_factory=list)
    """The form of earlier versions, still read when a workflow's history replays."""

    @property
    def reports_progress(self) -> bool:
        """Whether the signal says more than earlier versions could, see TRACKING_REPORTS_PATCH."""
        return bool(self.failed_items or self.progressed or self.retried)

    def numbers(self) -> tuple[list[int], list[int], list[tuple[int | None, Failure]]]:
        """Completed numbers, failed numbers and failure details with the number of the item
        each is of (None when the failure's id must tell), whichever form was sent."""
        completed, failed = list(self.completed), list(self.failed)
        owners: list[int | None] = list(self.failed_items)
        owners += [None] * (len(self.failures) - len(owners))
        failures = list(zip(owners, self.failures, strict=False))
        for result in self.results:
            (failed if result.failed else completed).append(result.number)
            if result.failure is not None:
                failures.append((None, result.failure))
        return completed, failed, failures


class TrackingState(BaseModel):
    """A batch's items forwarded to a queue; see ``jobservice.workflows.tracked``."""

    forwarded: int = 0
    refused: int = 0
    settled: Base64Bytes = b""
    settled_count: int = 0
    awaiting: list[tuple[int, int, datetime]] = Field(default_factory=list)
    reported: dict[int, tuple[int, int]] = Field(default_factory=dict)
    """(percentage, retries) by index of the items in flight a worker has said something of;
    an item leaves it when it settles, so it holds no more than the in-flight window."""
    retries: int = 0


class ControlState(BaseModel):
    """Whether a batch may start work; see ``jobservice.workflows.control``."""

    paused: bool = False
    cancelling: bool = False


class WindowState(BaseModel):
    """What holds the dispatch window back: an unreachable broker, or a chunk that found the
    job paused; see ``jobservice.workflows.window``."""

    retry_at: datetime | None = None
    backoff: float = 1.0
    waiting: str | None = None
    """Why the batch waits, for the job's status."""
    held_until: datetime | None = None
    """A chunk found the job paused or ended: no chunk starts before this, unless told."""


class BatchState(BaseModel):
    """Everything a batch carries across continue-as-new: cursors and counts."""

    split: SplitResult | None = None
    sub_batches_fetched: int = 0
    pending: list[SubBatch] = Field(default_factory=list)
    next_sub_batch: int = 0
    next_item: int = 0
    retry_ranges: list[tuple[int, int]] = Field(default_factory=list)
    finished: Progress = Field(default_factory=Progress)
    tracking: TrackingState | None = None
    control: ControlState = Field(default_factory=ControlState)
    window: WindowState = Field(default_factory=WindowState)


class BatchInput(BaseModel):
    context: JobContext
    path: list[int] = Field(default_factory=list)
    definition: str
    paused: bool = False
    state: BatchState | None = None
    budget: int | None = None
    """How many batches this subtree may run at once; None: the job's whole budget."""


class ProgressReport(BaseModel):
    """A child batch's progress, signalled to its parent at most once per progress interval."""

    index: int
    progress: Progress


class BatchesRequest(BaseModel):
    """Which of a batch's running child batches a ``batches`` query asks for, by index order."""

    offset: int = 0
    limit: int = 50


class RunningBatch(BaseModel):
    """A child batch as its parent sees it while it runs."""

    index: int
    workflow_id: str
    progress: Progress | None = None
    """Its rolled-up counts, failures left out, as it last reported them; None until then."""
    estimate: int | None = None
    """How many items the plugin expected in it, when it registered the sub-batch."""
    paused: bool = False
    """Whether its parent has told it to pause (it may also have been told directly)."""


class BatchPage(BaseModel):
    """One batch of a job's tree and a page of its running children: what a ``batches`` query
    answers. Small whatever the tree's size: counts, and at most a page of children."""

    progress: Progress
    """This batch's rolled-up counts, failures left out."""
    paused: bool = False
    running: list[RunningBatch] = Field(default_factory=list)
    running_total: int = 0
    """All the children running now, of which ``running`` is a page."""
    finished_children: int = 0
    """Children that were started and have ended."""
    pending: int = 0
    """Sub-batches fetched from the plugin and not started yet."""
    more_pending: bool = False
    """Whether the plugin has more sub-batches for this batch than it has been asked for yet."""
    sub_batch_total: int | None = None
    """The sub-batches the plugin counted in this batch; None until it has been split."""
    chunks: int = 0
    """Chunks of this batch's own items out now."""
    chunk_items: int = 0
    """Items those chunks hold."""


class NewJobRow(JobBase):
    """Everything a job row is made from; the workflow carries it to make a missing row."""

    partition_id: str
    job_id: str
    definition: dict[str, Any]
    definition_hash: str
    prerequisite_job_ids: list[str] = Field(default_factory=list)
    delay: int = 0


class JobInput(BaseModel):
    context: JobContext
    definition: str
    new_row: NewJobRow | None = None
    """The job's row, on the first run only: the workflow makes it if it is missing."""
    prerequisite_job_ids: list[str] = Field(default_factory=list)
    """Jobs that must be Completed before this one starts; then it waits ``delay`` seconds."""
    delay: int = 0
    state: BatchState | None = None
    paused: bool = False
    started_at: datetime | None = None
    paused_seconds: float = 0.0

    @property
    def waits(self) -> bool:
        """Whether the job starts Waiting: it has not run yet and has prerequisites or a delay."""
        return self.state is None and bool(self.prerequisite_job_ids or self.delay)


class JobProgress(BaseModel):
    """What the job workflow answers to the ``progress`` query, and records when it ends."""

    status: JobStatus
    progress: Progress
    started_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    finished_at: datetime | None = None
    failures: list[Failure] = Field(default_factory=list)


# -- the job's row: local activities of the job workflow ------------------------------------


class JobRecord(JobState):
    """A job's state as its workflow sees it, to be written to its row."""

    partition_id: str
    job_id: str
    resumed: bool = False
    """The job was resumed since its last record: a Paused row may read Active again."""
    new_row: NewJobRow | None = None
    """Given on a job's first record: the row is made from it if it is missing."""
    ended: bool = False
    """The job's last record, made as it ends (a cancelled job reads Cancelled before it)."""


class JobKey(BaseModel):
    partition_id: str
    job_id: str


class PrerequisiteQuery(BaseModel):
    partition_id: str
    job_id: str
    prerequisite_job_ids: list[str]


class PrerequisiteState(BaseModel):
    """Where a waiting job's prerequisites stand."""

    waiting_for: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    """Prerequisites that do not exist (yet); also in ``waiting_for``."""
    failure: Failure | None = None
    """Set when a prerequisite Failed or was Cancelled: the job can never run."""

    def reason(self) -> str:
        """The job's status reason while it waits."""
        reason = f"waiting for prerequisite jobs {', '.join(self.waiting_for)}"
        if self.missing:
            reason += f" ({', '.join(self.missing)} not created yet)"
        return reason


# -- word for a job's whole tree -----------------------------------------------------------


class Word(StrEnum):
    """What every batch of a tree is told."""

    PAUSE = "pause"
    CANCEL = "cancel"


class TreeWord(BaseModel):
    """The word for every running batch of a job's tree."""

    partition_id: str
    job_id: str
    word: Word
