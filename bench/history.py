"""What a job costs Temporal: history events and approximate Temporal Cloud actions, summed
over every run of every workflow of the job (continued-as-new runs included).

Temporal caps one workflow run's history at 51,200 events or 50 MB and warns from 10,240
(https://docs.temporal.io/workflow-execution/limits). Temporal Cloud bills actions
(https://docs.temporal.io/cloud/actions); :func:`actions` estimates them from the history
alone, which leaves out what never enters it: activity heartbeats and queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from jobservice.jobs.taskids import workflow_id

HISTORY_EVENT_LIMIT = 51_200
"""Temporal terminates a workflow run whose history reaches this many events."""

_ONE_ACTION_EACH = frozenset(
    {
        # Every run: a client's start, a child's execution, a continue-as-new.
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        # A child costs a second action in its parent, for starting it.
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
        EventType.EVENT_TYPE_TIMER_STARTED,
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        # Counted where it arrives, whether a client or a workflow sent it.
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    }
)


@dataclass
class HistoryCost:
    """History events, workflow runs, activity tasks and approximate actions of a set of runs."""

    workflows: int = 0
    """Workflow ids; a workflow that continued as new has several runs under one id."""
    runs: int = 0
    events: int = 0
    longest: int = 0
    activity_tasks: int = 0
    actions: int = 0

    def add_run(self, events: list[HistoryEvent]) -> None:
        """Count one workflow run's history."""
        self.runs += 1
        self.events += len(events)
        self.longest = max(self.longest, len(events))
        self.activity_tasks += sum(
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for event in events
        )
        self.actions += actions(events)


def actions(events: Iterable[HistoryEvent]) -> int:
    """Temporal Cloud actions of one run, as far as its history shows them.

    Each run, child start, timer, signal, search attribute upsert and accepted update is one;
    an activity is one per attempt; the markers that one workflow task records are one together
    (Cloud's rule for local activities; patch markers are counted alike, which may be high).
    """
    count = 0
    marker_tasks: set[int] = set()
    for event in events:
        if event.event_type in _ONE_ACTION_EACH:
            count += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            count += max(1, event.activity_task_started_event_attributes.attempt)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker_tasks.add(
                event.marker_recorded_event_attributes.workflow_task_completed_event_id
            )
    return count + len(marker_tasks)


def job_query(partition: str, job_id: str) -> str:
    """A visibility query for every workflow of a job: its own and each batch's below it."""
    root = workflow_id(partition, job_id)
    return f"WorkflowId = '{root}' OR WorkflowId STARTS_WITH '{root}/'"


async def history_cost(client: Client, query: str) -> HistoryCost:
    """The summed history of every workflow run, open or closed, that ``query`` lists."""
    cost = HistoryCost()
    ids: set[str] = set()
    async for execution in client.list_workflows(query):
        ids.add(execution.id)
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        cost.add_run([event async for event in handle.fetch_history_events()])
    cost.workflows = len(ids)
    return cost


def cost_line(name: str, items: int, cost: HistoryCost) -> str:
    """One printed line: the totals of ``cost`` and what they come to per item."""
    return (
        f"{name}: {cost.events:,} history events in {cost.runs:,} workflow runs of "
        f"{cost.workflows:,} workflows, {cost.events / items:.4f} events/item; "
        f"{cost.activity_tasks:,} activity tasks; ~{cost.actions:,} actions, "
        f"{cost.actions / items:.4f}/item"
    )


def extrapolated_line(name: str, measured_items: int, items: int, cost: HistoryCost) -> str:
    """What ``cost``, measured on ``measured_items``, comes to on ``items``, and, beyond
    Temporal's cap on one run's history, how many runs that takes at the least."""
    events = cost.events * items // measured_items
    line = (
        f"{name}: {events:,} history events, {cost.activity_tasks * items // measured_items:,} "
        f"activity tasks, ~{cost.actions * items // measured_items:,} actions"
    )
    if events > HISTORY_EVENT_LIMIT:
        runs = -(-events // HISTORY_EVENT_LIMIT)
        line += (
            f"; more than the {HISTORY_EVENT_LIMIT:,} events (or 50 MB) Temporal lets one "
            f"workflow run hold, so it could only run by continuing as new: {runs:,} runs at "
            "the least"
        )
    return line


ACTIONS_NOTE = (
    "~actions: Temporal Cloud's billed actions, approximated from the history: a start per "
    "run and per child, an activity attempt, a timer, a signal, a search attribute upsert, an "
    "update, the markers of one workflow task; activity heartbeats and queries never enter the "
    "history and are not counted"
)
