"""The garbage collector of a long-running server process, set for the heap such a process has.

Once a server has started, most of its heap lives as long as it does: modules, the workflow
sandbox's, pydantic's and SQLAlchemy's models, compiled statements; hundreds of thousands of
objects. Its work then makes millions of short-lived ones (an item's task message, its data).
With the collector's defaults, every seven hundred allocations start a collection of the
youngest, and every full collection walks the whole long-lived heap again, for nothing: at a
hundred thousand items a second that was a quarter of a worker's time. So, once started, a
server moves what it holds out of the collector's sight (``gc.freeze``) and collects the young
less often. Reference counting frees what it always did; only cycles among the frozen objects,
which a settled process does not make, would wait for the process to end.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations (less deallocations) between two collections of the youngest generation."""

SETTLE_AFTER_SECONDS = 3.0
"""How long after it starts a server settles its heap: its stack and worker are up by then."""


def settle() -> None:
    """Collect what is garbage now, freeze the rest, and collect the young less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
