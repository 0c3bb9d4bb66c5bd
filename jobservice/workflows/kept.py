"""The result of an activity or child workflow that completed in the moment it was cancelled.

When a workflow cancels the handle of an activity (or the task awaiting a child) in the same
activation in which its completion arrived, the SDK raises CancelledError all the same and
keeps the result only on the handle's future. What the chunk or child did would then be
neither counted nor done again; read from there, it is counted as it happened.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


def result_kept(handle: object, result_type: type[T]) -> T | None:
    """The result ``handle`` completed with, if it did; None if it never completed."""
    future = getattr(handle, "_result_fut", None)
    if not isinstance(future, asyncio.Future) or not future.done() or future.cancelled():
        return None
    if future.exception() is not None:
        return None
    result = future.result()
    return result if isinstance(result, result_type) else None
