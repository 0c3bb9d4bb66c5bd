"""What a chunk or a child batch did, when it was cancelled and its result did not come back.

A chunk cancelled between two tries (its worker died, and the job stopped before the next
try) did what its last try heartbeated: Temporal hands those details back with the cancel.

When a workflow cancels the handle of an activity (or the task awaiting a child) in the same
activation in which its completion arrived, the SDK raises CancelledError all the same and
keeps the result only on the handle's future. What the chunk or child did would then be
neither counted nor done again; read from there, it is counted as it happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import ChunkResult

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


def heartbeated(details: Sequence[Any]) -> ChunkResult | None:
    """The result a chunk heartbeated last, from a cancel's details; None if there is none."""
    if not details:
        return None
    try:
        return ChunkResult.model_validate(details[0])
    except ValidationError:
        return None
