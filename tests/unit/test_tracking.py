"""The tracking consumer's bookkeeping: what it signals, exactly-once counting, acks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aiormq.abc import DeliveredMessage
from pamqp import commands as spec
from pamqp.header import ContentHeader

from examples.reference_worker import result_message
from jobservice.execution.batch import JobContext
from jobservice.execution.tracking import TrackedResult, TrackingBatch, TrackingState
from jobservice.jobs.job import Failure
from jobservice.settings import EngineSettings
from jobservice.tracking.acks import Unacked
from jobservice.tracking.gathered import SIGNAL_REPORTS, BatchReports, Delivery
from jobservice.tracking.reports import read_reports
from jobservice.workflows.tracked import TrackedItems
from tests.unit.test_reports import FAILURE, report_task, task


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

    items.record(TrackingBatch(retried=[(4, 1), (4, 1), (5, None), (6, 0)]), limit=5, sent=all_sent)
    # the same reports delivered again, and item 4's second try
    items.record(TrackingBatch(retried=[(4, 2), (5, None), (6, 0)]), limit=5, sent=all_sent)

    # 4 was tried twice more; 5 and 6 (no number, or the reference framework's 0) once each
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


def gathered(*bodies: bytes) -> tuple[dict[str, BatchReports], list[Delivery]]:
    """The reports of ``bodies`` by batch workflow, as the consumer gathers a burst."""
    batches: dict[str, BatchReports] = {}
    deliveries = []
    for body in bodies:
        reading = read_reports(body, "tracking")
        delivery = Delivery.of(delivered(body), reading)
        deliveries.append(delivery)
        for report in reading.reports:
            batches.setdefault(report.batch_workflow, BatchReports(report.job_workflow)).add(
                report, delivery
            )
    return batches, deliveries


def test_a_signal_carries_details_of_its_first_failures_only() -> None:
    bodies = [
        result_message(task(n), "RESULT_EXCEPTION" if n < 30 else "RESULT_SUCCESS", "no", None)
        for n in range(31)
    ]
    batches, _ = gathered(*bodies)

    (signal,) = batches["job/p/j/2"].signals()

    assert (signal.failed, signal.completed) == (list(range(30)), [30])
    assert [f.failure_id for f in signal.failures] == [f"p:j.2.{n}" for n in range(20)]
    assert signal.failed_items == list(range(20))


def test_a_signal_says_of_each_item_in_flight_only_what_came_last_before_its_result() -> None:
    # Given a burst in which items report progress, retries and results in turn
    batches, _ = gathered(
        report_task(
            {"jobTaskId": "p:j.2.1", "status": "Progress", "estimatedPercentageCompleted": 30},
            {"jobTaskId": "p:j.2.1", "status": "Progress", "estimatedPercentageCompleted": 60},
            {"jobTaskId": "p:j.2.2", "status": "Progress", "estimatedPercentageCompleted": 80},
            {"jobTaskId": "p:j.2.2", "status": "Retry", "estimatedPercentageCompleted": 0},
            {"jobTaskId": "p:j.2.3", "status": "Complete"},
            {"jobTaskId": "p:j.2.3", "status": "Progress", "estimatedPercentageCompleted": 10},
            {"jobTaskId": "p:j.2.4", "status": "Failed", "failure": FAILURE},
            {"jobTaskId": "p:j.2.4", "status": "Retry", "retries": 1},
        ),
    )

    (signal,) = batches["job/p/j/2"].signals()

    # Then the last estimate of each item still in flight goes, and nothing heard after a result
    assert signal.progressed == [(1, 60), (2, 0)]
    assert signal.retried == [(2, None)]
    assert (signal.completed, signal.failed, signal.failed_items) == ([3], [4], [4])
    assert signal.failures[0].failure_id == "p:j.2.4"


def test_a_message_is_settled_once_every_batch_it_speaks_of_has_its_reports() -> None:
    one = report_task(
        {"jobTaskId": "p:j.2.1", "status": "Complete"},
        {"jobTaskId": "p:j.3.1", "status": "Complete"},
        {"jobTaskId": "p:j.3.x", "status": "Complete"},
    )
    batches, (delivery,) = gathered(one)
    assert delivery.refused == [(2, "task id 'p:j.3.x' has a non-numeric path")]

    batches["job/p/j/2"].recorded()
    assert not delivery.settled
    batches["job/p/j/3"].refuse("unknown job")

    assert delivery.settled and delivery.partly_recorded
    assert delivery.reason == (
        "trackingReports[2]: task id 'p:j.3.x' has a non-numeric path; "
        "trackingReports[1]: unknown job"
    )


def test_a_large_burst_for_one_batch_goes_in_several_signals() -> None:
    reports = [{"jobTaskId": f"p:j.2.{n}", "status": "Complete"} for n in range(SIGNAL_REPORTS + 1)]
    batches, _ = gathered(report_task(*reports))

    signals = batches["job/p/j/2"].signals()

    assert [len(s.completed) for s in signals] == [SIGNAL_REPORTS, 1]


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
    unacked = Unacked(channel)
    messages = [delivered_on(channel, tag) for tag in range(1, 6)]
    for message in messages:
        unacked.received(message)

    await unacked.ack(messages[:3])

    assert channel.acks == [(3, True)]


async def test_no_ack_covers_a_message_still_to_be_settled() -> None:
    channel = AckLog()
    unacked = Unacked(channel)
    first, second, third = (delivered_on(channel, tag) for tag in (1, 2, 3))
    for message in (first, second, third):
        unacked.received(message)

    await unacked.ack([first, third])
    await unacked.ack([second])

    assert channel.acks == [(1, False), (3, False), (2, True)]


async def test_messages_of_an_earlier_channel_are_acked_alone() -> None:
    earlier, current = AckLog(), AckLog()
    unacked = Unacked(current)
    new = delivered_on(current, 1)
    unacked.received(new)

    await unacked.ack([delivered_on(earlier, 1)])
    await unacked.ack([new])

    assert (earlier.acks, current.acks) == ([(1, False)], [(1, True)])
