"""A batch's capacity: children at once, their budgets, and its share of the in-flight window."""

from __future__ import annotations

from jobservice.settings import EngineSettings
from jobservice.workflows.budget import MIN_QUEUE_SHARE, Budget

ENGINE = EngineSettings(batch_budget=64, batch_window=16, in_flight_window=64_000)


def test_the_root_has_the_whole_budget_and_window() -> None:
    root = Budget.of(ENGINE, None, queue=False)

    assert root.batches == 64
    assert root.window_share() == 64_000


def test_children_at_once_are_bounded_by_the_window_the_budget_and_the_sub_batches() -> None:
    assert Budget.of(ENGINE, None, queue=False).batch_window(1000) == 16
    assert Budget.of(ENGINE, 4, queue=False).batch_window(1000) == 4
    assert Budget.of(ENGINE, None, queue=False).batch_window(3) == 3


def test_the_budget_is_divided_among_the_children_at_once() -> None:
    root = Budget.of(ENGINE, None, queue=False)

    assert root.child_budget(1000) == 64 // 16
    assert Budget.of(ENGINE, root.child_budget(1000), queue=False).child_budget(1000) == 1


def test_a_subtree_has_its_budget_s_share_of_the_in_flight_window() -> None:
    assert Budget.of(ENGINE, 16, queue=True).window_share() == 16_000
    assert Budget.of(ENGINE, 1, queue=True).window_share() == 1_000


def test_items_to_a_queue_run_in_fewer_batches_each_with_a_worthwhile_share() -> None:
    engine = ENGINE.model_copy(update={"in_flight_window": 4_000})

    # 4,000 items in flight make 8 shares of MIN_QUEUE_SHARE: 8 children, not 16
    assert Budget.of(engine, None, queue=True).batch_window(1000) == 4_000 // MIN_QUEUE_SHARE
    assert Budget.of(engine, None, queue=False).batch_window(1000) == 16


def test_never_less_than_one_child_at_once() -> None:
    tiny = Budget.of(EngineSettings(in_flight_window=100), 1, queue=True)

    assert tiny.batch_window(1000) == 1
    assert tiny.child_budget(1000) == 1
