"""The event loop jobservice's processes run on: uvloop where it is installed.

A queue pipe's items cost a handful of loop callbacks and socket calls each (publishes,
confirms, deliveries); uvloop does those in C, and the ``bench.pipes`` end-to-end run gains
about a sixth on it. ``JOBSERVICE_UVLOOP=false`` runs on asyncio's own loop instead.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory(uvloop: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop if wanted and installed; asyncio's own if not wanted, whatever loop
    policy the process has; ``None`` (the policy's loop) when uvloop is wanted but not
    installed (Windows)."""
    if not uvloop:
        if sys.platform == "win32":
            return asyncio.ProactorEventLoop
        return asyncio.SelectorEventLoop
    try:
        import uvloop as _uvloop
    except ImportError:  # not built for this platform
        return None
    return _uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, uvloop: bool = True) -> T:
    """``asyncio.run`` on the loop of :func:`loop_factory`."""
    with asyncio.Runner(loop_factory=loop_factory(uvloop)) as runner:
        return runner.run(main)
