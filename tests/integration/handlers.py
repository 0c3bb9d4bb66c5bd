"""Item handlers and a batch plugin that tests register in their in-process worker."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from jobservice import (
    BatchDefinitionError,
    BatchPlugin,
    BatchWorkerServices,
    ItemHandler,
    TaskMessage,
)
from jobservice.plugins.handlers import item_of


class RecordingHandler(ItemHandler):
    """Remembers every item it was given, and how often; ``sleepMillis`` slows it down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: Counter[Any] = Counter()
        self.task_ids: list[str] = []

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        item = item_of(message)
        key = item if isinstance(item, int | str) else repr(item)
        with self._lock:
            self.seen[key] += 1
            self.task_ids.append(message.job_task_id)
        if "sleepMillis" in params:
            time.sleep(float(params["sleepMillis"]) / 1000)

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(self.seen.values())


class TimedHandler(ItemHandler):
    """Remembers when it was given each item (monotonic seconds), and whose it was: a job's
    rate, measured."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.times: list[float] = []
        self.jobs: list[str] = []
        """The job of each item of ``times``: ``partition:jobId``."""

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        with self._lock:
            self.times.append(time.monotonic())
            self.jobs.append(message.job_task_id.split(".", 1)[0])

    def since(self, start: float) -> list[float]:
        with self._lock:
            return [at for at in self.times if at >= start]

    def windows(
        self,
        seconds: float,
        start: float,
        end: float,
        step: float = 1.0,
        *,
        job: str | None = None,
    ) -> list[int]:
        """Items handled in each window of ``seconds``, from ``start`` to ``end``, a ``step``
        apart; of the job ``job`` (``partition:jobId``) only, if given."""
        with self._lock:
            pairs = list(zip(self.times, self.jobs, strict=True))
        times = sorted(at for at, whose in pairs if job is None or whose == job)
        counts = []
        at = start
        while at + seconds <= end:
            counts.append(sum(1 for t in times if at <= t < at + seconds))
            at += step
        return counts


class FailOddItemsHandler(ItemHandler):
    """Fails every odd integer item."""

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        item = item_of(message)
        if int(item) % 2:
            raise ValueError(f"item {item} is odd")


class TwoHalvesBatchPlugin(BatchPlugin):
    """``N``: two sub-batches ``half:N``; a half registers N items, or refuses if N is "bad"."""

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        if not batch_definition.startswith("half:"):
            services.register_batch_subtask(f"half:{batch_definition}")
            services.register_batch_subtask("half:bad")
            return
        count = batch_definition.removeprefix("half:")
        if count == "bad":
            raise BatchDefinitionError("this half cannot be read")
        for n in range(int(count)):
            services.register_item_subtask(n)


class FlakyBatchPlugin(BatchPlugin):
    """``N:F``: N items, after F transient failures of each definition (``N:always``: never)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.attempts: Counter[str] = Counter()

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        count, failures = batch_definition.split(":")
        with self._lock:
            self.attempts[batch_definition] += 1
            attempt = self.attempts[batch_definition]
        if failures == "always" or attempt <= int(failures):
            raise ConnectionError(f"the source is unreachable (attempt {attempt})")
        for n in range(int(count)):
            services.register_item_subtask(n)


class FailMarkedHandler(ItemHandler):
    """Fails the integer items in ``marked``, which a test changes as it goes; remembers
    every item it was given, in order; ``sleepMillis`` slows it down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.marked: set[int] = set()
        self.seen: list[int] = []
        self.task_ids: list[str] = []

    def handle(self, message: TaskMessage, params: Mapping[str, str]) -> None:
        item = int(item_of(message))
        with self._lock:
            self.seen.append(item)
            self.task_ids.append(message.job_task_id)
            failing = item in self.marked
        if "sleepMillis" in params:
            time.sleep(float(params["sleepMillis"]) / 1000)
        if failing:
            raise ValueError(f"item {item} is marked to fail")
