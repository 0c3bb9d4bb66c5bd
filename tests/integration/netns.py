"""Hosts of their own on this machine: Linux network namespaces joined by a bridge.

Each host is a network namespace with one veth into the bridge, which holds the gateway's
address in the machine's own (root) namespace. A host reaches the others and the gateway on
the private subnet, and nothing else: it has no default route. Cutting a host off is taking
its veth's bridge end down, as pulling its cable would.

Everything made here is named after ``PREFIX``, so that what a crashed run left behind is
found and removed before the next builds anew. One run at a time holds the machine's lock
(:func:`exclusive`), so that a run never takes another's hosts for a crashed run's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PREFIX = "jsmh"
SUBNET = "10.213.0"
"""The /24 the hosts live on; the gateway (the bridge) is .1."""
BRIDGE = f"{PREFIX}-br"
GATEWAY = f"{SUBNET}.1"
LOCK = Path("/run/lock") / f"{PREFIX}.lock"
"""Held while a run has hosts: the subnet, the names and their leftovers are the machine's."""


class NamespacesUnavailableError(RuntimeError):
    """This machine will not make network namespaces for us; the message says why."""


@contextlib.contextmanager
def exclusive(path: Path = LOCK) -> Iterator[None]:
    """Hold the machine's lock on hosts, waiting while another run has them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NamespacesUnavailableError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def check_namespaces() -> None:
    """Raise, saying why, unless this process can make network namespaces and bridges."""
    if os.geteuid() != 0:
        raise NamespacesUnavailableError(
            f"network namespaces need root (CAP_NET_ADMIN); this runs as uid {os.geteuid()}"
        )
    if shutil.which("ip") is None:
        raise NamespacesUnavailableError("no `ip` command (iproute2) on the PATH")
    probe = f"{PREFIX}-probe"
    with contextlib.suppress(NamespacesUnavailableError):
        _ip("netns", "delete", probe)
    _ip("netns", "add", probe)
    _ip("netns", "delete", probe)


def remove_stale() -> None:
    """Remove namespaces, processes and links a previous run left behind."""
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(f"{PREFIX}-"):
            _kill_all_in(name)
            _ip("netns", "delete", name)
    for line in _ip("-o", "link", "show").splitlines():
        link = line.split(":")[1].strip().split("@")[0]
        if link.startswith(PREFIX):
            with contextlib.suppress(NamespacesUnavailableError):
                _ip("link", "delete", link)


def _kill_all_in(namespace: str) -> None:
    for pid in _ip("netns", "pids", namespace).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _ip("netns", "pids", namespace).split() and time.monotonic() < deadline:
        time.sleep(0.1)


@dataclass(frozen=True)
class Host:
    """A machine of the test: a network namespace with one address on the subnet."""

    name: str
    address: str
    namespace: str
    veth: str
    """The veth's end in the bridge, in the root namespace: down, the host is cut off."""

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` run on this host."""
        return ["ip", "netns", "exec", self.namespace, *args]

    def cut(self) -> None:
        """Take the host off the network: its packets go nowhere, nothing reaches it."""
        _ip("link", "set", self.veth, "down")

    def heal(self) -> None:
        """Put the host back on the network."""
        _ip("link", "set", self.veth, "up")


@dataclass
class Network:
    """The bridge and the hosts on it; ``remove`` takes all of it down again."""

    hosts: dict[str, Host] = field(default_factory=dict)

    @classmethod
    def build(cls, names: Sequence[str]) -> Network:
        """The bridge with a host of each name, at .10, .11, ... of the subnet."""
        remove_stale()
        network = cls()
        try:
            _ip("link", "add", BRIDGE, "type", "bridge")
            _ip("addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
            _ip("link", "set", BRIDGE, "up")
            for number, name in enumerate(names):
                network.hosts[name] = _add_host(name, number)
        except BaseException:
            network.remove()
            raise
        return network

    def remove(self) -> None:
        """Stop whatever still runs on the hosts and delete them and the bridge."""
        remove_stale()


def _add_host(name: str, number: int) -> Host:
    namespace = f"{PREFIX}-{name}"
    veth = f"{PREFIX}{number}"  # interface names are at most 15 characters
    address = f"{SUBNET}.{10 + number}"
    _ip("netns", "add", namespace)
    _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}-in")
    _ip("link", "set", f"{veth}-in", "netns", namespace)
    _ip("link", "set", veth, "master", BRIDGE)
    _ip("link", "set", veth, "up")
    _ip("-n", namespace, "link", "set", f"{veth}-in", "name", "eth0")
    _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
    _ip("-n", namespace, "link", "set", "eth0", "up")
    _ip("-n", namespace, "link", "set", "lo", "up")  # Temporal's services talk on it
    return Host(name=name, address=address, namespace=namespace, veth=veth)


@dataclass
class HostProcess:
    """A process running on a host, its output in a log file."""

    host: Host
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls, host: Host, args: Sequence[str], env: Mapping[str, str], log: Path
    ) -> HostProcess:
        output: IO[bytes] = log.open("ab")
        with output:
            process = subprocess.Popen(
                host.command(args),
                env=dict(env),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return cls(host=host, process=process, log=log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        """The end of its output, for a failure's message."""
        return f"--- {self.log.name} on {self.host.name}:\n" + "\n".join(
            self.output().splitlines()[-lines:]
        )

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()
