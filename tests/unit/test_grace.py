"""A process told to stop leaves at the end of its grace, whatever still holds it."""

from __future__ import annotations

import subprocess
import sys
import time

from jobservice.cli.grace import FORCED_EXIT_CODE

HELD = """
import asyncio, threading
from jobservice.cli.grace import exit_after_grace

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().create_task(exit_after_grace(stop, 0.5))
    stop.set()
    await asyncio.sleep(0.1)
    threading.Event().wait()  # something that never returns holds the loop's thread

asyncio.run(main())
"""

DONE = """
import asyncio
from jobservice.cli.grace import exit_after_grace

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().create_task(exit_after_grace(stop, 300))
    stop.set()
    await asyncio.sleep(0.1)

asyncio.run(main())
"""


def test_a_process_still_held_at_the_end_of_its_grace_exits_saying_so() -> None:
    started = time.monotonic()
    ended = subprocess.run(
        [sys.executable, "-c", HELD], capture_output=True, text=True, timeout=120, check=False
    )
    assert ended.returncode == FORCED_EXIT_CODE
    assert "has not stopped within its grace of 0.5 s" in ended.stderr
    assert time.monotonic() - started < 100  # the process would otherwise be held for good


def test_a_process_that_stops_in_time_does_not_wait_for_its_grace() -> None:
    started = time.monotonic()
    ended = subprocess.run(
        [sys.executable, "-c", DONE], capture_output=True, text=True, timeout=120, check=False
    )
    assert (ended.returncode, ended.stderr) == (0, "")
    assert time.monotonic() - started < 100  # far from the grace of 300 s
