"""What a chunk or child did when its cancel and its completion came together: read from
the handle, where the SDK keeps it (``jobservice.workflows.kept``)."""

from __future__ import annotations

import asyncio
import inspect

from temporalio.worker import _workflow_instance

from jobservice.execution.batch import ChunkResult, Progress
from jobservice.workflows.kept import heartbeated, result_kept


class _Handle:
    def __init__(self, future: asyncio.Future[object]) -> None:
        self._result_fut = future


def test_the_sdk_still_keeps_a_handles_result_where_it_is_read() -> None:
    # If a new SDK renames it, results would silently be lost again: this says so first.
    for handle in (_workflow_instance._ActivityHandle, _workflow_instance._ChildWorkflowHandle):
        assert "self._result_fut" in inspect.getsource(handle.__init__)


async def test_a_result_is_read_only_when_the_handle_completed_with_one() -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[object] = loop.create_future()
    done.set_result(ChunkResult(processed=5, completed=5))
    assert result_kept(_Handle(done), ChunkResult) == ChunkResult(processed=5, completed=5)
    assert result_kept(_Handle(done), Progress) is None

    failed: asyncio.Future[object] = loop.create_future()
    failed.set_exception(RuntimeError("no"))
    assert result_kept(_Handle(failed), ChunkResult) is None
    assert result_kept(_Handle(loop.create_future()), ChunkResult) is None
    assert result_kept(object(), ChunkResult) is None


def test_a_heartbeat_is_read_back_from_a_cancels_details() -> None:
    beat = ChunkResult(processed=7, completed=6, failed=1).model_dump(mode="json")
    assert heartbeated([beat]) == ChunkResult(processed=7, completed=6, failed=1)
    assert heartbeated([]) is None
    assert heartbeated(["not a result"]) is None
