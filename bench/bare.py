"""The engine's own limit: what one process does per item with no orchestration at all.

The same range plugin's items, the same default builder turning each into the same task
message (through the same :class:`MessageBuilding` a chunk uses, task ids included), and the
same ``noop`` handler's call on each, in a plain loop, a slice at a time as a chunk hands them
over. Only the building and the calls are timed; the items are made beforehand.

    python -m bench.bare [--items 1000000]

prints items/s. The engine benchmark runs it as a process of its own, as fresh as a worker is
when it starts, so that nothing its own runs left on the heap slows it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from jobservice.activities.batch import SLICE_ITEMS
from jobservice.activities.building import MessageBuilding
from jobservice.activities.counting import CountingServices
from jobservice.execution.batch import JobContext
from jobservice.plugins.range import LEAF_SIZE
from jobservice.plugins.registry import installed


def bare_rate(items: int) -> float:
    """Items/s of build-and-handle over ``items`` items of a ``local:noop`` range job."""
    registry = installed()
    context = JobContext(
        partition="bench", job_id="bare", batch_type="range", target_pipe="local:noop"
    )
    made: list[tuple[int, Any]] = []
    for start in range(0, items, LEAF_SIZE):
        services = CountingServices(item_start=0, item_end=LEAF_SIZE, stop_after_items=True)
        end = min(start + LEAF_SIZE, items)
        registry.batch_plugin("range").process_batch(services, f"{start}-{end}", None, {})
        made.extend(enumerate(services.items, start))
    handle = registry.handler("noop").handle
    params = context.task_message_params
    limit = context.engine.failure_details
    building = MessageBuilding(registry, context, [1], 0)
    started = time.perf_counter()
    for start in range(0, len(made), SLICE_ITEMS):
        built = building.build(made[start : start + SLICE_ITEMS], limit)
        for message in built.messages:
            handle(message, params)
    seconds = time.perf_counter() - started
    assert len(made) == items
    return items / seconds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    print(f"{bare_rate(parser.parse_args().items):.0f}")
