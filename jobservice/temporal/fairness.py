"""The fairness that keeps one job from holding the others back: every job's tasks are served
in turn by Temporal's matching, keyed by job."""

from __future__ import annotations

import hashlib

from temporalio.common import Priority

from jobservice.jobs.steering import DEFAULT_PRIORITY

FAIRNESS_DYNAMIC_CONFIG = {
    "matching.useNewMatcher": "true",
    "matching.enableFairness": "true",
    "matching.enableMigration": "true",
}
"""The Temporal server's dynamic config under which matching serves every job in turn. Without
it, tasks of a task queue are served first in, first out, and a job that submitted thousands of
them makes the next job wait behind them all."""

_FAIRNESS_KEY_BYTES = 64
"""The longest fairness key Temporal takes."""


def job_priority(partition: str, job_id: str, priority: int = DEFAULT_PRIORITY) -> Priority:
    """What the job's workflows and activities are started with: its priority (Temporal serves
    a task of priority 1 before any of 2, and so on), and a fairness key of the job's own, so
    that among jobs of one priority matching serves the tasks of all running jobs in turn,
    however many tasks each has queued. Keyed by job rather than by partition: one partition's
    huge job must not hold back the same partition's small one. The default priority is left
    unsaid: Temporal takes 3 then, as tasks begun before jobs had priorities were."""
    key = f"{partition}/{job_id}"
    if len(key.encode()) > _FAIRNESS_KEY_BYTES:
        key = hashlib.sha256(key.encode()).hexdigest()[:_FAIRNESS_KEY_BYTES]
    return Priority(
        priority_key=None if priority == DEFAULT_PRIORITY else priority, fairness_key=key
    )


def dev_server_fairness_args() -> list[str]:
    """``temporal server start-dev`` arguments that turn fairness on."""
    return [
        arg
        for key, value in FAIRNESS_DYNAMIC_CONFIG.items()
        for arg in ("--dynamic-config-value", f"{key}={value}")
    ]
