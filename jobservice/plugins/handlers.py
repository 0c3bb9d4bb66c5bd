"""Built-in in-process item handlers, for ``local:<name>`` target pipes."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from typing import Any

from jobservice.messages import TaskMessage
from jobservice.plugin import ItemHandler
from jobservice.plugins._split import resolve_in_root


def item_of(message: TaskMessage) -> Any:
    """The item a message carries: ``taskData.item`` from the default builder, else ``taskData``."""
    data = message.task_data
    return data["item"] if isinstance(data, dict) and "item" in data else data


class NoopItemHandler(ItemHandler):
    """Does nothing: for measuring the engine."""

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        return None


MAX_SLEEP_MILLIS = 60_000
"""The longest ``sleep`` sleeps per item: a minute is already far beyond what a demo needs,
and every item holds a worker thread that long."""
_MILLIS = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*", re.ASCII)


def sleep_millis(params: Mapping[str, str]) -> float:
    """The ``sleepMillis`` param: milliseconds from 0 to :data:`MAX_SLEEP_MILLIS`, default 10."""
    text = params.get("sleepMillis", "10")
    if _MILLIS.fullmatch(text) is None or float(text) > MAX_SLEEP_MILLIS:
        raise ValueError(
            f"sleepMillis {text[:40]!r} is not a number of milliseconds from 0 to "
            f"{MAX_SLEEP_MILLIS:,}, e.g. 10 or 2.5"
        )
    return float(text)


class SleepItemHandler(ItemHandler):
    """Sleeps ``sleepMillis`` (default 10, at most 60,000) per item: stands in for real work."""

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        time.sleep(sleep_millis(params) / 1000)

    def check_params(self, params: Mapping[str, str]) -> None:
        sleep_millis(params)


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
