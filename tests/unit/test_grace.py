"""A process told to stop leaves at the end of its grace, whatever still holds it."""

from __future__ import annotations

import subprocess
import sys
import time

from jobservice.cli.grace import FORCED_EXIT_CODE

MARGIN = 1.0
"""Seconds a process may take past its grace to be gone, counted from its stop: a busy machine
schedules the timer thread and the exit late."""

# Each script prints the moment it is told to stop on the system's monotonic clock, which
# every process on the machine shares, so the test measures from the stop, not the start-up.
HELD = """
import asyncio, threading, time
from jobservice.cli.grace import exit_after_grace

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().create_task(exit_after_grace(stop, 0.5))
    print(time.monotonic(), flush=True)
    stop.set()
    await asyncio.sleep(0.1)
    threading.Event().wait()  # something that never returns holds the loop's thread

asyncio.run(main())
"""

DONE = """
import asyncio, time
from jobservice.cli.grace import exit_after_grace

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().create_task(exit_after_grace(stop, 300))
    print(time.monotonic(), flush=True)
    stop.set()
    await asyncio.sleep(0.1)

asyncio.run(main())
"""


def run_until_gone(script: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``script``; how it ended, and the seconds from its stop until it was gone."""
    ended = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    gone = time.monotonic()
    return ended, gone - float(ended.stdout.split()[0])


def test_a_process_still_held_at_the_end_of_its_grace_exits_saying_so() -> None:
    ended, after_stop = run_until_gone(HELD)
    assert ended.returncode == FORCED_EXIT_CODE
    assert "has not stopped within its grace of 0.5 s" in ended.stderr
    assert 0.5 <= after_stop < 0.5 + MARGIN, f"gone {after_stop:.2f} s after its stop"


def test_a_process_that_stops_in_time_does_not_wait_for_its_grace() -> None:
    ended, after_stop = run_until_gone(DONE)
    assert (ended.returncode, ended.stderr) == (0, "")
    assert after_stop < MARGIN, f"gone {after_stop:.2f} s after its stop, its grace 300 s"
