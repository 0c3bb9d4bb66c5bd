"""The message contract: schemas, the tracking consumer's reading, exactly-once bookkeeping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec
from pamqp.header import ContentHeader

from examples.reference_worker import result_message
from jobservice.execution import JobContext, TrackedResult, TrackingBatch, TrackingState
from jobservice.messages import TaskMessage
from jobservice.models import Failure
from jobservice.reports import UnreadableError, read_report
from jobservice.settings import EngineSettings
from jobservice.tracking import _Batch, _Unacked
from jobservice.workflows.tracked import TrackedItems

SCHEMAS = Path(__file__).parents[2] / "schemas"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return loaded


def task(number: int = 17) -> dict[str, Any]:
    return TaskMessage(
        job_task_id=f"p:j.2.{number}",
        task_classifier="c",
        task_api_version=1,
        task_data={"item": number, "params": {}},
        to="documents",
        correlation_id="p:j",
        tracking_pipe="tracking",
        track_to="documents",
    ).to_dict()


def test_messages_match_the_published_schemas() -> None:
    jsonschema.validate(task(), schema("task-message"))
    result = json.loads(result_message(task(), "RESULT_SUCCESS", {"ok": 1}, None))
    jsonschema.validate(result, schema("tracking-result"))
    jsonschema.validate(
        {"jobTaskId": "p:j.2.17", "estimatedPercentageCompleted": 40}, schema("progress-report")
    )


def test_a_result_names_its_batch_and_number() -> None:
    body = result_message(task(), "RESULT_EXCEPTION", "disk full", "next-queue")

    report = read_report(body, "tracking")

    assert (report.batch_workflow, report.job_workflow) == ("job/p/j/2", "job/p/j")
    assert report.number == 17
    assert report.failure is not None
    assert report.failure.failure_message == "RESULT_EXCEPTION: disk full"
    assert report.failure.failure_source == "worker reference-worker"
    assert report.forward_to == "next-queue"


@pytest.mark.parametrize("to", [None, "", "tracking", "documents"])
def test_results_are_not_forwarded_back_to_the_tracking_or_target_pipe(to: str | None) -> None:
    report = read_report(result_message(task(), "RESULT_SUCCESS", {}, to), "tracking")
    assert report.forward_to is None


def result_for(job_task_id: str) -> str:
    return json.dumps({"taskStatus": "RESULT_SUCCESS", "tracking": {"jobTaskId": job_task_id}})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"taskStatus": "RESULT_SUCCESS"}', "no tracking.jobTaskId"),
        (json.dumps({**task(), "taskStatus": "NEW_TASK"}).encode(), "unknown taskStatus"),
        (
            json.dumps({**task(), "taskStatus": "RESULT_SUCCESS", "tracking": {"jobTaskId": "x"}}),
            "no 'partition:' prefix",
        ),
        (
            json.dumps(
                {**task(), "taskStatus": "RESULT_SUCCESS", "tracking": {"jobTaskId": "p:j"}}
            ),
            "names a job, not an item",
        ),
        (b'{"jobTaskId": "p:j.1", "estimatedPercentageCompleted": 140}', "is not 0 to 100"),
    ],
)
def test_unreadable_messages_say_why(body: bytes | str, reason: str) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(UnreadableError, match=reason):
        read_report(raw, "tracking")


def delivered(body: bytes) -> DeliveredMessage:
    """A message as the consumer gets it; no channel, as nothing here acks it."""
    return DeliveredMessage(
        delivery=spec.Basic.Deliver(), header=ContentHeader(), body=body, channel=cast(Any, None)
    )


def all_sent(index: int) -> bool:
    """Every item has gone out."""
    return True


def tracked(item_total: int = 20, timeout: float = 60) -> TrackedItems:
    context = JobContext(
        partition="p",
        job_id="j",
        batch_type="range",
        target_pipe="documents",
        engine=EngineSettings(result_timeout_seconds=timeout),
    )
    return TrackedItems(
        TrackingState(), context=context, path=[2], item_total=item_total, sub_batch_total=3
    )


def ten_in_flight() -> TrackedItems:
    """A batch of 20 items whose first ten went out; item index i is number i + 4."""
    items = tracked()
    items.forwarded(0, 10, 10, [], datetime.now(UTC))
    return items


def failure_of(failure_id: str) -> Failure:
    return Failure(
        failure_id=failure_id,
        failure_time=datetime.now(UTC),
        failure_source="s",
        failure_message="m",
    )


def test_each_item_settles_once_however_often_its_result_comes() -> None:
    items = tracked()
    now = datetime.now(UTC)
    items.forwarded(0, 10, 9, [4], now)  # item 4 failed before it went out
    failure = Failure(
        failure_id="p:j.2.2", failure_time=now, failure_source="s", failure_message="m"
    )
    # item numbers follow the three sub-batches: item index i is number i + 4
    batch = TrackingBatch(
        completed=[n + 4 for n in range(10)] * 2 + [99],  # twice, and one not of this batch
        failed=[2],  # a sub-batch, not an item
        failures=[failure],
    )

    settled = items.record(batch, limit=5, sent=all_sent)

    assert (settled.completed, settled.failed, settled.failures) == (9, 0, [])
    assert items.outstanding == 0
    assert items.all_settled


def test_overdue_items_fail_once_and_the_state_survives_a_copy() -> None:
    items = tracked(timeout=5)
    start = datetime.now(UTC)
    items.forwarded(0, 10, 10, [], start)
    items.record(TrackingBatch(completed=[4, 5]), limit=5, sent=all_sent)

    assert items.expire(start + timedelta(seconds=4), limit=3).failed == 0
    expired = items.expire(start + timedelta(seconds=6), limit=3)
    again = items.expire(start + timedelta(seconds=7), limit=3)

    assert (expired.failed, again.failed) == (8, 0)
    assert expired.failures is not None and len(expired.failures) == 3
    assert expired.failures[0].failure_id == "p:j.2.6"
    copy = TrackingState.model_validate_json(items.snapshot().model_dump_json())
    restored = TrackedItems(
        copy, context=items._context, path=[2], item_total=20, sub_batch_total=3
    )
    assert restored.is_settled(9) and not restored.is_settled(10)
    assert restored.record(TrackingBatch(completed=[4]), limit=1, sent=all_sent).completed == 0


def test_a_signal_of_an_earlier_version_still_counts() -> None:
    items = ten_in_flight()
    failure = failure_of("p:j.2.5")
    old = TrackingBatch(
        results=[TrackedResult(number=4), TrackedResult(number=5, failed=True, failure=failure)]
    )

    settled = items.record(old, limit=5, sent=all_sent)

    assert (settled.completed, settled.failed, settled.failures) == (1, 1, [failure])


def test_items_in_flight_count_by_their_last_percentage_until_they_settle() -> None:
    items = ten_in_flight()
    # index 12 never went out, 25 is not of the batch
    items.record(
        TrackingBatch(progressed=[(n + 4, 50) for n in range(10)] + [(16, 90), (29, 90)]),
        limit=5,
        sent=lambda index: index < 10,
    )
    assert items.in_flight_percent == 500

    # a lower estimate replaces the last one, it does not add to it
    items.record(TrackingBatch(progressed=[(4, 20)]), limit=5, sent=all_sent)
    assert items.in_flight_percent == 470

    # a settled item leaves the sum, and what comes for it later moves nothing
    items.record(TrackingBatch(completed=[4, 5]), limit=5, sent=all_sent)
    items.record(TrackingBatch(progressed=[(4, 80)], retried=[(5, 1)]), limit=5, sent=all_sent)
    assert (items.in_flight_percent, items.state.retries) == (400, 0)
    assert sorted(items.state.reported) == list(range(2, 10))

    # the percentages live through continue-as-new
    copy = TrackingState.model_validate_json(items.snapshot().model_dump_json())
    restored = TrackedItems(
        copy, context=items._context, path=[2], item_total=20, sub_batch_total=3
    )
    assert restored.in_flight_percent == 400
    restored.expire(datetime.now(UTC) + timedelta(hours=1), limit=1)
    assert (restored.in_flight_percent, restored.state.reported) == (0, {})


def test_a_retry_counts_once_per_try_and_keeps_the_item_in_flight() -> None:
    items = ten_in_flight()

    items.record(TrackingBatch(retried=[(4, 1), (4, 1), (5, None)]), limit=5, sent=all_sent)
    items.record(TrackingBatch(retried=[(4, 2), (5, None)]), limit=5, sent=all_sent)

    assert items.state.retries == 4
    assert items.outstanding == 10
    assert items.record(TrackingBatch(completed=[4]), limit=5, sent=all_sent).completed == 1


def test_a_failure_counts_for_the_item_the_signal_names_whatever_its_id() -> None:
    items = ten_in_flight()
    failure = failure_of("INVALID_TASK")
    unnamed = failure.model_copy(update={"failure_id": "RESULT_EXCEPTION"})

    settled = items.record(
        TrackingBatch(failed=[6], failures=[failure, unnamed], failed_items=[6]),
        limit=5,
        sent=all_sent,
    )

    assert (settled.failed, settled.failures) == (1, [failure])


def test_a_signal_carries_details_of_its_first_failures_only() -> None:
    batch = _Batch("job/p/j")
    for number in range(31):
        status = "RESULT_EXCEPTION" if number < 30 else "RESULT_SUCCESS"
        body = result_message(task(number), status, "no", None)
        batch.add(read_report(body, "tracking"), delivered(body))

    signal = batch.signal()

    assert (signal.failed, signal.completed) == (list(range(30)), [30])
    assert [f.failure_id for f in signal.failures] == [f"p:j.2.{n}" for n in range(20)]


class AckLog:
    """A channel that records the acks sent on it."""

    def __init__(self) -> None:
        self.acks: list[tuple[int, bool]] = []

    async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))


def delivered_on(channel: AckLog, tag: int) -> DeliveredMessage:
    return DeliveredMessage(
        delivery=spec.Basic.Deliver(delivery_tag=tag),
        header=ContentHeader(),
        body=b"",
        channel=cast(Any, channel),
    )


async def test_one_ack_covers_a_run_of_settled_messages() -> None:
    channel = AckLog()
    unacked = _Unacked(channel)
    messages = [delivered_on(channel, tag) for tag in range(1, 6)]
    for message in messages:
        unacked.received(message)

    await unacked.ack(messages[:3])

    assert channel.acks == [(3, True)]


async def test_no_ack_covers_a_message_still_to_be_settled() -> None:
    channel = AckLog()
    unacked = _Unacked(channel)
    first, second, third = (delivered_on(channel, tag) for tag in (1, 2, 3))
    for message in (first, second, third):
        unacked.received(message)

    await unacked.ack([first, third])
    await unacked.ack([second])

    assert channel.acks == [(1, False), (3, False), (2, True)]


async def test_messages_of_an_earlier_channel_are_acked_alone() -> None:
    earlier, current = AckLog(), AckLog()
    unacked = _Unacked(current)
    new = delivered_on(current, 1)
    unacked.received(new)

    await unacked.ack([delivered_on(earlier, 1)])
    await unacked.ack([new])

    assert (earlier.acks, current.acks) == ([(1, False)], [(1, True)])
