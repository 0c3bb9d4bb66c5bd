"""jobservice spread over hosts of their own: Temporal, workers, the API, an external worker.

A :class:`Lab` is the network and what stays up for a whole module: Temporal on its host, and
the machine's PostgreSQL and RabbitMQ forwarded onto the gateway's address (a fresh
database). A :class:`Deployment` is one test's processes on those hosts, with a task queue
and tracking pipes of its own.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yarl
from sqlalchemy.engine import URL, make_url

from jobservice.db.engine import create_database_engine
from jobservice.db.schema import upgrade
from jobservice.processes.devserver import DevServer
from jobservice.settings import RabbitSettings, get_settings
from tests.conftest import unique
from tests.integration.database import POSTGRES, fresh_database
from tests.integration.forwarding import Forwarder
from tests.integration.netns import GATEWAY, Host, HostProcess, Network, exclusive
from tests.integration.processes import COMMAND, REFERENCE_WORKER

TEMPORAL, WORKER_A, WORKER_B, CLIENT, REFERENCE = (
    "temporal",
    "worker-a",
    "worker-b",
    "client",
    "reference",
)
HOSTS = (TEMPORAL, WORKER_A, WORKER_B, CLIENT, REFERENCE)
TEMPORAL_PORT = 7233
API_PORT = 8080
MONITOR_PORT = 9400
HEARTBEAT_TIMEOUT_SECONDS = 5
"""A worker cut off loses its chunks to the others this soon."""
_READY_SECONDS = 90.0


@dataclass(kw_only=True)
class HostedDevServer(DevServer):
    """The Temporal dev server, run on a host of the network and reached at its address.

    It binds every address of its host, which are its own loopback and its one on the subnet:
    the dev server's services bind ``--ip`` but dial each other at 127.0.0.1, so bound to the
    subnet address alone they would never meet.
    """

    on: Host

    @property
    def address(self) -> str:
        return f"{self.on.address}:{self.port}"

    def command(self) -> list[str]:
        args = super().command()
        args[args.index("--ip") + 1] = "0.0.0.0"
        return self.on.command(args)


@dataclass
class Lab:
    """The hosts, Temporal on its own, and the job database and broker as hosts reach them."""

    network: Network
    temporal: DevServer
    database_url: str
    rabbit_url: str
    logs: Path

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    def process_environment(self) -> dict[str, str]:
        """What every process of the lab is given: none of this machine's own settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSERVICE_")}
        env.update(
            PYTHONUNBUFFERED="1",
            JOBSERVICE_TEMPORAL__ADDRESS=self.temporal.address,
            JOBSERVICE_DATABASE__URL=self.database_url,
            JOBSERVICE_RABBITMQ__URL=self.rabbit_url,
            # engine settings go into a job where it is submitted: the API's are the ones used
            JOBSERVICE_ENGINE__HEARTBEAT_TIMEOUT_SECONDS=str(HEARTBEAT_TIMEOUT_SECONDS),
            JOBSERVICE_DEV__DATA_DIR=str(self.logs / "data"),
        )
        return env


@asynccontextmanager
async def lab(logs: Path) -> AsyncIterator[Lab]:
    """Build the network, start Temporal on its host, forward the machine's services."""
    with exclusive():
        network = Network.build(HOSTS)
        try:
            with Forwarder(GATEWAY) as forwarder, _migrated_database() as database:
                database_port = forwarder.forward(
                    database.host or "127.0.0.1", database.port or 5432
                )
                rabbit = yarl.URL(RabbitSettings().url.get_secret_value())
                rabbit_port = forwarder.forward(rabbit.host or "127.0.0.1", rabbit.port or 5672)
                temporal = HostedDevServer(
                    binary=get_settings().dev.temporal_binary(),
                    port=TEMPORAL_PORT,
                    db_file=logs / "temporal.db",
                    log_file=logs / "temporal.log",
                    on=network.hosts[TEMPORAL],
                )
                async with temporal:
                    yield Lab(
                        network=network,
                        temporal=temporal,
                        database_url=database.set(
                            host=GATEWAY, port=database_port
                        ).render_as_string(hide_password=False),
                        rabbit_url=str(rabbit.with_host(GATEWAY).with_port(rabbit_port)),
                        logs=logs,
                    )
        finally:
            network.remove()


@contextmanager
def _migrated_database() -> Iterator[URL]:
    """A fresh job database at the current schema: its URL on the machine."""
    with fresh_database("multihost") as name:
        url = make_url(POSTGRES).set(drivername="postgresql+psycopg", database=name)
        engine = create_database_engine(url.render_as_string(hide_password=False))
        upgrade(engine)
        engine.dispose()
        yield url


@dataclass
class Deployment:
    """One test's processes on the lab's hosts, sharing a task queue and tracking pipes."""

    lab: Lab
    task_queue: str = field(default_factory=lambda: unique("multihost"))
    tracking_pipe: str = field(default_factory=lambda: unique("tracking"))
    dead_letter_pipe: str = field(default_factory=lambda: unique("dead-letters"))
    processes: list[HostProcess] = field(default_factory=list)

    def environment(self, host: Host) -> dict[str, str]:
        env = self.lab.process_environment()
        env.update(
            JOBSERVICE_TEMPORAL__TASK_QUEUE=self.task_queue,
            JOBSERVICE_RABBITMQ__TRACKING_PIPE=self.tracking_pipe,
            JOBSERVICE_RABBITMQ__DEAD_LETTER_PIPE=self.dead_letter_pipe,
            JOBSERVICE_MONITOR__HOST=host.address,
            JOBSERVICE_MONITOR__PORT=str(MONITOR_PORT),
            JOBSERVICE_API__HOST=host.address,
            JOBSERVICE_API__PORT=str(API_PORT),
        )
        return env

    def _start(self, host: Host, args: list[str], log: str) -> HostProcess:
        process = HostProcess.start(
            host, args, self.environment(host), self.lab.logs / f"{self.task_queue}-{log}.log"
        )
        self.processes.append(process)
        return process

    async def start_api_and_workers(self) -> tuple[str, HostProcess, HostProcess]:
        """The API on the client host and a worker on each worker host, once all are ready:
        the API's URL, and the workers on hosts A and B."""
        api, worker_a, worker_b = await asyncio.gather(
            self.start_api(), self.start_worker(WORKER_A), self.start_worker(WORKER_B)
        )
        return api, worker_a, worker_b

    async def start_api(self) -> str:
        """``jobservice api`` on the client host; its URL once it answers."""
        host = self.lab.host(CLIENT)
        process = self._start(host, [*COMMAND, "api"], "api")
        url = f"http://{host.address}:{API_PORT}"
        await _until_answers(process, f"{url}/readyz")
        return url

    async def start_worker(self, name: str) -> HostProcess:
        """``jobservice worker`` on host ``name``, once it says it is ready."""
        host = self.lab.host(name)
        process = self._start(host, [*COMMAND, "worker"], name)
        await self.ready(process)
        return process

    async def ready(self, worker: HostProcess) -> None:
        """Wait until ``worker`` says it is ready: polling its task queue, and consuming its
        tracking pipe."""
        await _until_answers(worker, f"{monitor_url(worker.host)}/readyz")

    async def start_reference_worker(self, queue: str) -> HostProcess:
        """The example external worker on the reference host, consuming ``queue``."""
        host = self.lab.host(REFERENCE)
        args = [sys.executable, str(REFERENCE_WORKER), "--queue", queue]
        process = self._start(host, [*args, "--url", self.lab.rabbit_url], "reference")

        async def consuming() -> bool:
            return "consuming" in process.output()

        await _until(process, consuming)
        return process

    async def stop(self) -> None:
        """Stop every process of the deployment, all at once."""
        await asyncio.gather(*(asyncio.to_thread(process.stop) for process in self.processes))

    def logs(self) -> str:
        """The end of every process's output, for a failure's message."""
        return "\n".join(process.tail() for process in self.processes)


def monitor_url(host: Host) -> str:
    return f"http://{host.address}:{MONITOR_PORT}"


async def _until_answers(process: HostProcess, url: str) -> None:
    async with httpx.AsyncClient(timeout=2, trust_env=False) as http:

        async def answers() -> bool:
            try:
                return (await http.get(url)).status_code == 200
            except httpx.TransportError:
                return False

        await _until(process, answers)


async def _until(process: HostProcess, check: Callable[[], Awaitable[bool]]) -> None:
    """Wait for ``check`` to hold while ``process`` runs; fail naming what it said."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READY_SECONDS
    while not await check():
        if not process.running():
            raise AssertionError(f"exited with {process.process.returncode}\n{process.tail()}")
        if loop.time() > deadline:
            raise AssertionError(f"not ready within {_READY_SECONDS}s\n{process.tail()}")
        await asyncio.sleep(0.3)
