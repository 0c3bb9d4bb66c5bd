"""Built-in in-process item handlers, for ``local:<name>`` target pipes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from jobservice.messages import ItemHandler, TaskMessage
from jobservice.plugins._split import resolve_in_root


def item_of(message: TaskMessage) -> Any:
    """The item a message carries: ``taskData.item`` from the default builder, else ``taskData``."""
    data = message.task_data
    return data["item"] if isinstance(data, dict) and "item" in data else data


class NoopItemHandler(ItemHandler):
    """Does nothing: for measuring the engine."""

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        return None


class SleepItemHandler(ItemHandler):
    """Sleeps ``sleepMillis`` (default 10) per item: stands in for real work in demos."""

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        time.sleep(float(params.get("sleepMillis", "10")) / 1000)


class ChecksumItemHandler(ItemHandler):
    """SHA-256 of a file under the file root (the ``directory`` plugin's items).

    Where a sidecar ``<file>.sha256`` exists, the digest must match its first word, or the
    item fails naming both digests.
    """

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        path, _ = resolve_in_root(str(item_of(message)))
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        sidecar = path.with_name(path.name + ".sha256")
        if sidecar.is_file():
            words = sidecar.read_text().split()
            expected = words[0].lower() if words else ""
            if expected != digest.hexdigest():
                raise ValueError(
                    f"checksum mismatch for {item_of(message)}: "
                    f"expected {expected or '(empty sidecar)'}, got {digest.hexdigest()}"
                )
