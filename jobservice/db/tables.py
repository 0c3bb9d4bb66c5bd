"""The job database's tables.

A job row is what the REST API reads: the workflow keeps it current. Labels and
prerequisites are kept twice: as JSON on the row, for reading a job in one go, and as rows of
their own, so that filters, sorts and "who waits for this job" are indexed queries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from jobservice.jobs.ids import JOB_ID_LENGTH, PARTITION_ID_LENGTH


class JobRow(SQLModel, table=True):
    """One job, as the API shows it."""

    __tablename__ = "job"

    partition_id: str = Field(primary_key=True, max_length=PARTITION_ID_LENGTH)
    job_id: str = Field(primary_key=True, max_length=JOB_ID_LENGTH)
    name: str | None = Field(default=None, sa_column=Column(Text))
    description: str | None = Field(default=None, sa_column=Column(Text))
    external_data: str | None = Field(default=None, sa_column=Column(Text))
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    """The job as submitted, in the API's JSON: what a workflow is started from."""
    definition_hash: str = Field(max_length=64)
    status: str = Field(max_length=16, index=True)
    status_reason: str | None = Field(default=None, sa_column=Column(Text))
    percentage_complete: float = 0.0
    total: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    splitting_complete: bool = False
    """Whether every item is known, so that ``total`` is final."""
    items_per_second: float | None = None
    eta_seconds: float | None = None
    failures: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    prerequisite_job_ids: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    delay: int = 0
    """Seconds to wait once the prerequisites are Completed."""
    create_time: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    """Epoch milliseconds, as the API shows it."""
    last_update_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    redrive_count: int = 0
    """How often the job's failed items were sent again: the round its workflow runs."""
    last_redrive_time: int | None = Field(default=None, sa_column=Column(BigInteger))
    """Epoch milliseconds of its last redrive."""
    rate_limit: float | None = None
    """Items a second the job may go at; None: no limit. This and the next three are its
    steering (see :mod:`jobservice.jobs.steering`), as submitted or last tuned."""
    in_flight_window: int | None = None
    failure_tolerance: str | None = Field(default=None, sa_column=Column(Text))
    """None in a row made before steering was kept: the definition's then."""
    priority: int = Field(default=3, sa_column_kwargs={"server_default": "3"})
    recent_items_per_second: float | None = None
    """Items a second over the last few seconds, as its workflow last measured them."""
    target_pipe: str | None = Field(default=None, sa_column=Column(Text, index=True))
    """Where the job's items go: the jobs sending to a pipe share its limit. None in a row
    made before it was kept."""


class JobLabelRow(SQLModel, table=True):
    """One label of a job, for filtering and sorting by label."""

    __tablename__ = "job_label"
    __table_args__ = (Index("ix_job_label_key_value", "partition_id", "label", "value"),)

    partition_id: str = Field(primary_key=True, max_length=PARTITION_ID_LENGTH)
    job_id: str = Field(primary_key=True, max_length=JOB_ID_LENGTH)
    label: str = Field(primary_key=True, max_length=255)
    value: str = Field(sa_column=Column(Text, nullable=False))


class JobPrerequisiteRow(SQLModel, table=True):
    """A job waits for another of its partition: indexed both ways."""

    __tablename__ = "job_prerequisite"
    __table_args__ = (
        Index("ix_job_prerequisite_prerequisite", "partition_id", "prerequisite_job_id"),
    )

    partition_id: str = Field(primary_key=True, max_length=PARTITION_ID_LENGTH)
    job_id: str = Field(primary_key=True, max_length=JOB_ID_LENGTH)
    prerequisite_job_id: str = Field(primary_key=True, max_length=JOB_ID_LENGTH)


class ItemsInHandRow(SQLModel, table=True):
    """Items of a job that one worker process has handed to an item handler and not yet
    settled, as that worker last said: a job's ``inFlight`` adds up its fresh rows."""

    __tablename__ = "job_items_in_hand"
    __table_args__ = (Index("ix_job_items_in_hand_job", "partition_id", "job_id"),)

    worker_id: str = Field(primary_key=True, max_length=64)
    partition_id: str = Field(primary_key=True, max_length=PARTITION_ID_LENGTH)
    job_id: str = Field(primary_key=True, max_length=JOB_ID_LENGTH)
    items: int = 0
    updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Epoch milliseconds: a row a worker has not refreshed for a while is not counted."""


class PausedPipeRow(SQLModel, table=True):
    """A job's paused pipe: results of the job held there while it was paused, to be passed on
    to their ``to`` queues when it resumes, and how many of its results were dropped instead
    (the job was cancelled, failed or deleted). A row exists for a job only once it has held
    a result."""

    __tablename__ = "job_paused_pipe"
    # The keeper of paused pipes asks twice a second for the few with something held.
    __table_args__ = (
        Index(
            "ix_job_paused_pipe_held",
            "held",
            sqlite_where=text("held <> 0"),
            postgresql_where=text("held <> 0"),
        ),
    )

    partition_id: str = Field(primary_key=True, max_length=PARTITION_ID_LENGTH)
    job_id: str = Field(primary_key=True, max_length=JOB_ID_LENGTH)
    held: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    """Results put on the pipe and not yet passed on or dropped, counted once they are there
    (and before what brought them is acked)."""
    dropped: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    """Results not passed on to their ``to`` queue because the job was cancelled or failed."""
    job_deleted: bool = False
    """The job was deleted while its pipe held results: they are dropped, and the row goes
    with the pipe. A job submitted again under the same id meanwhile does not get them."""
    updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Epoch milliseconds."""


class FailedItemRow(SQLModel, table=True):
    """One failed item of a job in one round (0: its first run; n: its n-th redrive): what the
    failure was, and the task message that sends the same item again without reading the
    source anew.

    ``state`` says where the item stands in its round (see :mod:`jobservice.db.failures`):
    ``reported`` by a worker and not yet counted by its batch, ``failed`` (counted),
    ``pending`` (copied into a redrive, to be sent again) or ``completed`` (it succeeded when
    sent again). The job's failed items are its last round's ``failed`` and ``pending`` rows."""

    __tablename__ = "job_failed_item"
    __table_args__ = (
        Index(
            "ux_job_failed_item_task",
            "partition_id",
            "job_id",
            "round",
            "task_id",
            unique=True,
        ),
        Index("ix_job_failed_item_listing", "partition_id", "job_id", "round", "state", "id"),
        Index("ix_job_failed_item_position", "partition_id", "job_id", "round", "position"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    """The order failures were recorded in: what a listing pages by."""
    partition_id: str = Field(max_length=PARTITION_ID_LENGTH)
    job_id: str = Field(max_length=JOB_ID_LENGTH)
    round: int = 0
    """0 for the job's first run; n for its n-th redrive."""
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    failure_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Epoch milliseconds."""
    failure_source: str = Field(sa_column=Column(Text, nullable=False))
    failure_message: str = Field(sa_column=Column(Text, nullable=False))
    message: str | None = Field(default=None, sa_column=Column(Text))
    """The item's task message, as JSON; None for an item that never became one (a plugin
    could not produce it, or the task message builder failed on it)."""
    item: str | None = Field(default=None, sa_column=Column(Text))
    """The plugin's item, as JSON, for an item whose task message could not be built."""
    state: str = Field(max_length=16)
    position: int | None = None
    """Its place (from 0) among the items a redrive sends again: the redrive's item index."""


class BatchCheckpointRow(SQLModel, table=True):
    """Where one batch of a job stood when the job stopped (cancelled, or failed): what a
    redrive carries on from, so that it runs exactly the items the job never got to.

    ``state`` is the batch's state as JSON, with everything it had out taken back: items
    of chunks and items on a queue without a result are to be sent again, and its children
    that were running are to be started again from their own rows. A batch writes its row as
    it stops, after its children have written theirs."""

    __tablename__ = "job_batch_checkpoint"

    partition_id: str = Field(primary_key=True, max_length=PARTITION_ID_LENGTH)
    job_id: str = Field(primary_key=True, max_length=JOB_ID_LENGTH)
    path: str = Field(sa_column=Column(Text, primary_key=True))
    """The batch's place in the tree, as its task id names it: '' for the root, '2.7'."""
    state: str = Field(sa_column=Column(Text, nullable=False))
    written_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Epoch milliseconds."""


class PaceRow(SQLModel, table=True):
    """When the next items of a rate-limited job may go (``jobservice.db.pace``): chunks
    take their slots in turn, from every worker, so the job keeps to its rate."""

    __tablename__ = "pace"

    key: str = Field(sa_column=Column(Text, primary_key=True))
    """Whose pace: ``job:<partition>/<job id>``."""
    next_free: float
    """Epoch seconds, by the database's clock, from which the next slot is free."""
    rate: float | None = None
    """A limit kept here rather than given by the caller; None: the caller's."""
    updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Epoch milliseconds."""


class PipeLimitRow(SQLModel, table=True):
    """A target pipe's limit: items a second for every job sending to it together, divided
    among them (``jobservice.db.pipes``). A pipe without a row has no limit."""

    __tablename__ = "pipe_limit"

    pipe: str = Field(sa_column=Column(Text, primary_key=True))
    rate_limit: float
    epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Counts the times the pipe's shares were dealt anew: its limit set, a job joining."""
    updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Epoch milliseconds."""


class PipeUserRow(SQLModel, table=True):
    """A job that lately took a slot of its share of a limited pipe; the pipe's limit is
    divided among those whose ``until`` has not passed."""

    __tablename__ = "pipe_user"

    pipe: str = Field(sa_column=Column(Text, primary_key=True))
    pace: str = Field(sa_column=Column(Text, primary_key=True))
    """The job's pace key: ``job:<partition>/<job id>``."""
    own_limit: float | None = None
    """The job's own rate limit: a job held below its share leaves the rest to the others."""
    share: float
    """Items a second the job was last given."""
    until: float
    """Epoch seconds, by the database's clock: the end of its last slot, and a moment more."""
