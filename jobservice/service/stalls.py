"""Whether anyone is working on a job: what its row cannot say by itself.

A job's row holds what its workflow last wrote. With no worker polling the task queue, or no
item finished for a while though work is left, that row alone would look healthy, with the
last rate and an ETA frozen in it. The views the service hands out then say so in
``statusReason``, with no ETA and a rate of zero.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError, ServiceClient

from jobservice.jobs.job import JobView
from jobservice.jobs.status import JobStatus
from jobservice.settings import Settings

_log = logging.getLogger(__name__)

POLLERS_CACHE_SECONDS = 5.0
"""How long one answer about a task queue's pollers is used, whatever the number of reads."""
POLLER_SEEN_SECONDS = 120.0
"""A worker that has polled within this long is there: an idle one polls again every minute."""
_WATCHED = {JobStatus.ACTIVE, JobStatus.WAITING}


class JobHealth:
    """Adds to views of running jobs what their rows cannot know."""

    def __init__(self, service: ServiceClient, namespace: str, settings: Settings) -> None:
        self._service = service
        self._namespace = namespace
        self._settings = settings
        self._polled: bool | None = None
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    async def annotate(self, views: Sequence[JobView]) -> list[JobView]:
        """``views`` with the reasons a running job is not moving, where there are any."""
        if not any(view.status in _WATCHED for view in views):
            return list(views)
        polled = await self.workers_polling()
        now = datetime.now(UTC)
        return [self._annotated(view, polled, now) for view in views]

    def _annotated(self, view: JobView, polled: bool | None, now: datetime) -> JobView:
        if view.status not in _WATCHED:
            return view
        reasons = [view.status_reason] if view.status_reason else []
        update: dict[str, object] = {}
        if polled is False:
            queue = self._settings.temporal.task_queue
            reasons.append(
                f"no worker is polling task queue {queue!r}; start one with 'jobservice worker'"
            )
            update["eta_seconds"] = None
        if view.status is JobStatus.ACTIVE and _stalled(view, now, self._stall_seconds):
            assert view.last_update_time is not None
            quiet = (now - view.last_update_time).total_seconds()
            reasons.append(f"no item has finished for {_duration(quiet)}")
            update.update(eta_seconds=None, items_per_second=0.0)
        if not update:
            return view
        return view.model_copy(update={**update, "status_reason": "; ".join(reasons)})

    @property
    def _stall_seconds(self) -> float:
        return self._settings.api.stall_seconds

    async def workers_polling(self) -> bool | None:
        """Whether a worker polls the job task queue; None when Temporal cannot say."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            fresh = self._checked_at is not None and (
                loop.time() - self._checked_at < POLLERS_CACHE_SECONDS
            )
            if not fresh:
                self._polled = await self._ask_temporal()
                self._checked_at = loop.time()
            return self._polled

    async def _ask_temporal(self) -> bool | None:
        queue = self._settings.temporal.task_queue
        try:
            answers = await asyncio.gather(
                *(
                    self._service.workflow_service.describe_task_queue(
                        DescribeTaskQueueRequest(
                            namespace=self._namespace,
                            task_queue=TaskQueue(name=queue),
                            task_queue_type=kind,
                        )
                    )
                    for kind in (
                        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                        TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                    )
                )
            )
        except RPCError as exc:
            _log.debug("could not ask Temporal for the pollers of %s: %s", queue, exc.message)
            return None
        now = datetime.now(UTC)
        for answer in answers:
            seen = [p.last_access_time.ToDatetime(UTC) for p in answer.pollers]
            if not any((now - at).total_seconds() < POLLER_SEEN_SECONDS for at in seen):
                return False
        return True


def _stalled(view: JobView, now: datetime, stall_seconds: float) -> bool:
    """Work is left and nothing has moved the row for ``stall_seconds``."""
    if view.last_update_time is None:
        return False
    counts = view.counts
    work_left = not view.splitting_complete or counts.completed + counts.failed < counts.total
    return work_left and (now - view.last_update_time).total_seconds() >= stall_seconds


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
