"""An item handler that blocks, as an application's own handler may, and its installation as a
plugin for worker processes the tests start."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from jobservice import ItemHandler, TaskMessage
from jobservice.plugins.handlers import item_of

BLOCK_ITEMS = "blockItems"
"""The task message parameter naming the items that block: numbers, comma-separated, or all."""

MARKERS = "JOBSERVICE_TEST_BLOCKING_MARKERS"
"""A folder where the handler makes a file named after each item as it starts to block."""

RELEASED = "JOBSERVICE_TEST_BLOCKING_RELEASED"
"""Set in a worker's environment, the handler never blocks there."""

_REPOSITORY = Path(__file__).parents[2]


class BlockingHandler(ItemHandler):
    """Handles integer items; those ``blockItems`` names block until :attr:`released` is set.

    In a worker process it is never set (unless ``JOBSERVICE_TEST_BLOCKING_RELEASED`` is): those
    items block for good.
    """

    def __init__(self) -> None:
        self.released = threading.Event()
        if os.environ.get(RELEASED):
            self.released.set()
        self._lock = threading.Lock()
        self.seen: Counter[int] = Counter()
        self.blocked: set[int] = set()
        """Items whose call has started to block."""

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        item = int(item_of(message))
        with self._lock:
            self.seen[item] += 1
        if self.released.is_set() or not _blocks(item, params.get(BLOCK_ITEMS, "")):
            return
        with self._lock:
            self.blocked.add(item)
        markers = os.environ.get(MARKERS)
        if markers:
            (Path(markers) / str(item)).touch()
        self.released.wait()


def _blocks(item: int, which: str) -> bool:
    return which == "all" or str(item) in which.split(",")


def plugin_path(folder: Path) -> dict[str, str]:
    """Install :class:`BlockingHandler` as the item handler ``block`` for processes started
    with the environment returned: a distribution's metadata in ``folder``, found on the
    ``PYTHONPATH``, as an application's package would declare its handlers."""
    dist = folder / "jobservice_test_blocking-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: jobservice-test-blocking\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[jobservice.item_handlers]\nblock = tests.integration.blocking:BlockingHandler\n"
    )
    path = [str(folder), str(_REPOSITORY), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in path if p)}
