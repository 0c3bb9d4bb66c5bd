"""Integration fixtures: a real Temporal dev server for the session, a worker per test."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from aio_pika.abc import AbstractChannel
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from jobservice.db.engine import create_database_engine
from jobservice.db.schema import upgrade
from jobservice.db.store import JobStore
from jobservice.plugins.registry import Registry, installed
from jobservice.processes.devserver import DevServer
from jobservice.processes.worker import build_worker, run_worker
from jobservice.service.job_service import JobService
from jobservice.settings import (
    DatabaseSettings,
    EngineSettings,
    RabbitSettings,
    Settings,
    TemporalSettings,
    get_settings,
)
from jobservice.temporal.connection import connect
from jobservice.web.app import create_app
from tests.conftest import unique
from tests.integration import processes
from tests.integration.database import postgres_schema
from tests.integration.handlers import (
    FailMarkedHandler,
    FailOddItemsHandler,
    FlakyBatchPlugin,
    RecordingHandler,
    TimedHandler,
    TwoHalvesBatchPlugin,
)
from tests.integration.rabbit import NewQueue, delete_queues, rabbit_connection, rabbitmqctl
from tests.integration.support import api_client


@pytest.fixture(scope="session")
async def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    server = DevServer(binary=get_settings().dev.temporal_binary(), log_file=log)
    async with server:
        yield server


@pytest.fixture(scope="session")
async def client(temporal_server: DevServer) -> Client:
    return await connect(TemporalSettings(address=temporal_server.address))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A job database for the session, migrated to the current schema."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'jobs.db'}"
    engine = create_database_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A schema of the session's own in the machine's PostgreSQL, migrated; dropped after."""
    with postgres_schema() as url:
        engine = create_database_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_databases`` run once on SQLite and once on PostgreSQL."""
    marked = metafunc.definition.get_closest_marker("both_databases") is not None
    if marked and "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """The job database: SQLite, or for tests marked ``both_databases`` each in turn."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def job_store(database_url: str) -> Iterator[JobStore]:
    store = JobStore(create_database_engine(database_url))
    yield store
    store.engine.dispose()


@pytest.fixture
def settings(temporal_server: DevServer, engine: EngineSettings, database_url: str) -> Settings:
    """Settings of this test alone: its own task queue, tracking and dead-letter queues."""
    return Settings(
        temporal=TemporalSettings(address=temporal_server.address, task_queue=unique("queue")),
        engine=engine,
        rabbitmq=RabbitSettings(
            tracking_pipe=unique("tracking"), dead_letter_pipe=unique("dead-letters")
        ),
        database=DatabaseSettings(url=SecretStr(database_url)),
    )


@pytest.fixture
def recorder() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def marked_handler() -> FailMarkedHandler:
    """``local:fail-marked``: fails the items a test marks."""
    return FailMarkedHandler()


@pytest.fixture
def timed() -> TimedHandler:
    """``local:timed``: remembers when it handled each item."""
    return TimedHandler()


@pytest.fixture
def registry(
    recorder: RecordingHandler, marked_handler: FailMarkedHandler, timed: TimedHandler
) -> Registry:
    """The installed plugins plus the tests' own, known to the worker and the service alike."""
    return installed().extended(
        batch_plugins={"two-halves": TwoHalvesBatchPlugin(), "flaky": FlakyBatchPlugin()},
        handlers={
            "record": recorder,
            "fail-odd": FailOddItemsHandler(),
            "fail-marked": marked_handler,
            "timed": timed,
        },
    )


@pytest.fixture
async def worker(
    client: Client, settings: Settings, registry: Registry, job_store: JobStore
) -> AsyncIterator[Worker]:
    worker = build_worker(client, settings=settings, registry=registry, store=job_store)
    async with worker:
        yield worker


@pytest.fixture
def service(
    client: Client, settings: Settings, registry: Registry, job_store: JobStore
) -> JobService:
    return JobService(client, store=job_store, settings=settings, registry=registry)


@pytest.fixture
async def http(service: JobService) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the REST API over this test's service, open to every partition."""
    async with api_client(create_app(service)) as client:
        yield client


@pytest.fixture
def partition() -> str:
    return unique("p")


@pytest.fixture
def owned_queues(settings: Settings) -> list[str]:
    """The queues this test creates, deleted when it ends."""
    return [settings.rabbitmq.tracking_pipe, settings.rabbitmq.dead_letter_pipe]


@pytest.fixture
async def rabbit(settings: Settings, owned_queues: list[str]) -> AsyncIterator[AbstractChannel]:
    """A channel to the machine's RabbitMQ."""
    connection = await rabbit_connection(settings.rabbitmq)
    async with connection:
        channel = await connection.channel()
        yield channel
        await delete_queues(channel, *owned_queues)


@pytest.fixture
def broker_restarted() -> Iterator[None]:
    """Whatever the test does to the broker, its app runs again when it ends."""
    yield
    rabbitmqctl("start_app")


@pytest.fixture
def new_queue(rabbit: AbstractChannel, owned_queues: list[str]) -> NewQueue:
    """Durable queues of this test's own, deleted when it ends."""

    async def declare(prefix: str) -> str:
        name = unique(prefix)
        await rabbit.declare_queue(name, durable=True)
        owned_queues.append(name)
        return name

    return declare


@pytest.fixture
async def target_queue(new_queue: NewQueue) -> str:
    """A durable target queue of this test's own."""
    return await new_queue("target")


@pytest.fixture
async def reference_worker(
    target_queue: str, request: pytest.FixtureRequest
) -> AsyncIterator[subprocess.Popen[str]]:
    """The example worker consuming the target queue; a test's marker may pass it options."""
    marker = request.node.get_closest_marker("worker_args")
    worker = processes.start_reference_worker(target_queue, *(marker.args if marker else ()))
    assert worker.stdout is not None
    assert "consuming" in await asyncio.to_thread(worker.stdout.readline)
    yield worker
    worker.terminate()
    await asyncio.to_thread(worker.wait, 30)


@pytest.fixture
async def tracking_worker(
    client: Client, settings: Settings, rabbit: AbstractChannel
) -> AsyncIterator[None]:
    """A worker with its tracking consumer, as ``jobservice worker`` runs them."""
    async with _running_worker(client, settings, tracking=True):
        yield


@pytest.fixture
async def worker_without_tracking(
    client: Client, settings: Settings, rabbit: AbstractChannel
) -> AsyncIterator[None]:
    """A worker publishing to queue pipes, as ``jobservice worker --no-tracking`` runs it."""
    async with _running_worker(client, settings, tracking=False):
        yield


@asynccontextmanager
async def _running_worker(
    client: Client, settings: Settings, *, tracking: bool
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(client, stop, settings=settings, tracking=tracking))
    yield
    stop.set()
    await running
