"""A process told to stop leaves within its grace, whatever still runs in it.

An item handler stuck for good cannot be stopped, only left behind: its chunk hands its cursor
back and the worker closes, but a call stuck in a thread that is joined at exit (a plugin's, in
the default executor) would still hold the process. The grace is the backstop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time

_log = logging.getLogger(__name__)

FORCED_EXIT_CODE = 1
"""The exit code of a process that had to be ended at the end of its grace."""


async def exit_after_grace(stop: asyncio.Event, grace: float) -> None:
    """Once ``stop`` is set, end the process ``grace`` seconds later if it is still running."""
    await stop.wait()
    # A thread, not the event loop: the loop may be what is held up.
    timer = threading.Thread(target=_exit_later, args=(grace,), name="grace", daemon=True)
    timer.start()


def _exit_later(grace: float) -> None:
    time.sleep(grace)
    _log.error(
        "the process has not stopped within its grace of %g s (a handler or plugin call still "
        "running?); exiting now",
        grace,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(FORCED_EXIT_CODE)
