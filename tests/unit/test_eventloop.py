"""The loop jobservice's processes start on."""

from __future__ import annotations

import asyncio

from jobservice.processes import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_processes_run_on_uvloop_unless_told_not_to() -> None:
    assert eventloop.run(_loop_module()).startswith("uvloop")
    assert eventloop.run(_loop_module(), uvloop=False).startswith("asyncio")
