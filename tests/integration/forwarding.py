"""A TCP forwarder on a thread of its own: the machine's services, seen from other hosts.

PostgreSQL and RabbitMQ listen on the machine's loopback only. A forwarder listening on the
bridge's address passes each connection on to one of them, so the hosts of a test reach them
as they would a database host and a broker host. It runs its own event loop, so a test that
blocks its loop for a moment holds nobody's traffic up.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

_BUFFER = 1 << 16


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_BUFFER):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class Forwarder:
    """Listens on ``host`` at ports it chooses, each passing connections to a target."""

    def __init__(self, host: str) -> None:
        self._host = host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    def start(self) -> Forwarder:
        self._thread.start()
        return self

    def forward(self, target_host: str, target_port: int) -> int:
        """The port on the forwarder's host that reaches ``target_host:target_port``."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                target_reader, target_writer = await asyncio.open_connection(
                    target_host, target_port
                )
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, target_writer), _pipe(target_reader, writer))

        def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = self._loop.create_task(handle(reader, writer))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

        async def listen() -> int:
            server = await asyncio.start_server(track, self._host, 0)
            self._servers.append(server)
            port: int = server.sockets[0].getsockname()[1]
            return port

        return asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Close the listeners and every connection through them."""

        async def close() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._connections):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self._connections, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Forwarder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
