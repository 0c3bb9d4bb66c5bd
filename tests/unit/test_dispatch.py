"""The activities' slicing of a plugin's registrations, by the services it is handed."""

from __future__ import annotations

import pytest

from jobservice.activities.counting import PAGE_BYTES, CountingServices, Enough


def test_counting_services_keep_one_window_of_items_and_count_all() -> None:
    services = CountingServices(item_start=3, item_end=6, sub_batch_start=1, sub_batch_end=2)
    for n in range(10):
        services.register_item_subtask(n)
    for name in "abc":
        services.register_batch_subtask(name)

    assert services.items == [3, 4, 5]
    assert services.item_count == 10
    assert services.sub_batches == ["b"]
    assert services.sub_batch_count == 3


def test_counting_services_stop_a_plugin_once_its_window_is_full() -> None:
    services = CountingServices(item_start=0, item_end=2, stop_after_items=True)
    services.register_item_subtask("a")
    services.register_item_subtask("b")
    with pytest.raises(Enough):
        services.register_item_subtask("c")
    assert services.items == ["a", "b"]


def test_a_page_of_sub_batches_stops_at_its_byte_budget_and_stays_contiguous() -> None:
    services = CountingServices(sub_batch_start=2, sub_batch_end=100)
    big = "x" * (PAGE_BYTES // 3)
    for n in range(10):
        services.register_batch_subtask(f"{n}{big}")

    assert [d[0] for d in services.sub_batches] == ["2", "3", "4"]  # a third each fills it
    assert services.sub_batch_count == 10
