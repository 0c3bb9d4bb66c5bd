"""A batch workflow's input, state and answers, and the activities' inputs and results."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from jobservice.execution.tracking import TrackingState
from jobservice.jobs.job import Failure
from jobservice.jobs.steering import Steering
from jobservice.jobs.taskids import job_task_id
from jobservice.jobs.tolerance import FailureTolerance
from jobservice.settings import EngineSettings


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
    status_check_interval_millis: int = 5000
    """How often a worker asks it: the ``max-age`` the API lets it cache the answer for."""
    failure_tolerance: FailureTolerance = Field(default_factory=FailureTolerance)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    round: int = 0
    """0 for the job's first run; n for its n-th redrive, whose one batch sends the job's
    failed items again, from what the failed-item ledger recorded of them."""
    carries_on: bool = False
    """In a redrive of a job that stopped before it reached every item: the job's own tree,
    carrying on where it stopped, before the round's batch sends the failed items again.
    Its failures are the round's."""
    steering: Steering | None = None
    """The job's steering as it was submitted; None in a job submitted before it had any."""

    def submitted_steering(self) -> Steering:
        """The job's steering as it was submitted: its failure tolerance, nothing else, in a
        job submitted before it had any."""
        return self.steering or Steering(failure_tolerance=self.failure_tolerance)

    @property
    def sends_failed_items(self) -> bool:
        """Whether the batch is a redrive's, sending the failed items of its round again."""
        return self.round > 0 and not self.carries_on

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


class PaceSlot(BaseModel):
    """When a chunk of a rate-limited job may send its items: from ``start``, ``rate`` a
    second, as its job's pace gave it (see ``jobservice.db.pace``)."""

    start: datetime
    rate: float
    items: int


class ChunkInput(BaseModel):
    """Items ``[start, end)`` of a batch (0-based, in registration order)."""

    context: JobContext
    path: list[int]
    definition: str
    sub_batch_total: int
    start: int
    end: int
    pace: PaceSlot | None = None
    """Set for a rate-limited job: the chunk sends its items no faster than its slot."""
    amqp_priority: int | None = None
    """The priority task messages published to a queue carry; None: none."""


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


class FailedItemsInput(BaseModel):
    """Items of a batch sent to a queue that it has counted failed, by index: ``reported`` by
    their workers, or ``expired`` without a result in time. The activity writes each one's task
    message to the job's failed-item ledger; in a redrive, where the messages are there, it
    writes what became of each item, ``completed`` ones too."""

    context: JobContext
    path: list[int]
    definition: str
    sub_batch_total: int
    reported: list[int] = Field(default_factory=list)
    expired: list[int] = Field(default_factory=list)
    completed: list[int] = Field(default_factory=list)


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
    slot: PaceSlot | None = None
    """In a rate-limited job: when the batch's next chunk may send, as its pace gave it."""


class StoppedChild(BaseModel):
    """A child batch that was running when its parent stopped, and what it had reported:
    a redrive starts it again from where it stood."""

    index: int
    sub_batch: SubBatch
    progress: Progress | None = None


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
    failed_reported: list[int] = Field(default_factory=list)
    """Indexes of items counted failed on a worker's report, not yet in the ledger."""
    failed_expired: list[int] = Field(default_factory=list)
    """Indexes of items counted failed for want of a result, not yet in the ledger."""
    redriven: list[int] = Field(default_factory=list)
    """In a redrive: indexes of items that completed, not yet in the ledger."""
    stopped: list[StoppedChild] = Field(default_factory=list)
    """Children to start again from where they stood, before any other: the batch carries
    on where it stopped."""


class BatchInput(BaseModel):
    context: JobContext
    path: list[int] = Field(default_factory=list)
    definition: str
    paused: bool = False
    state: BatchState | None = None
    budget: int | None = None
    """How many batches this subtree may run at once; None: the job's whole budget."""
    carries_on: bool = False
    """The batch starts from where it stood when the job stopped, as it wrote then."""
    steering: Steering | None = None
    """The job's steering as its parent had it when it started the batch (or as the batch
    had it when it continued as new); None: as the job was submitted."""


class Checkpoint(BaseModel):
    """Where a batch stood when its job stopped (``state``; None: it never wrote where),
    as a stopping batch writes it and a batch carrying on reads it."""

    partition: str
    job_id: str
    path: list[int]
    state: BatchState | None = None


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
