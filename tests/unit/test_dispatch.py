"""The activities' slicing of a plugin's registrations."""

from __future__ import annotations

import pytest

from jobservice.activities.batch import PAGE_BYTES, _Collector, _Enough


def test_the_collector_keeps_one_window_of_items_and_counts_all() -> None:
    collector = _Collector(item_start=3, item_end=6, sub_batch_start=1, sub_batch_end=2)
    for n in range(10):
        collector.register_item_subtask(n)
    for name in "abc":
        collector.register_batch_subtask(name)

    assert collector.items == [3, 4, 5]
    assert collector.item_count == 10
    assert collector.sub_batches == ["b"]
    assert collector.sub_batch_count == 3


def test_the_collector_stops_a_plugin_once_its_window_is_full() -> None:
    collector = _Collector(item_start=0, item_end=2, stop_after_items=True)
    collector.register_item_subtask("a")
    collector.register_item_subtask("b")
    with pytest.raises(_Enough):
        collector.register_item_subtask("c")
    assert collector.items == ["a", "b"]


def test_a_page_of_sub_batches_stops_at_its_byte_budget_and_stays_contiguous() -> None:
    collector = _Collector(sub_batch_start=2, sub_batch_end=100)
    big = "x" * (PAGE_BYTES // 3)
    for n in range(10):
        collector.register_batch_subtask(f"{n}{big}")

    assert [d[0] for d in collector.sub_batches] == ["2", "3", "4"]  # a third each fills it
    assert collector.sub_batch_count == 10
