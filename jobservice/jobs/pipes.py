"""Target pipes: ``local:<handler>`` names an item handler in the worker, any other name a
RabbitMQ queue."""

from __future__ import annotations

import re

LOCAL_PIPE_PREFIX = "local:"
"""A target pipe ``local:<handler>`` names an item handler in the worker; any other, a queue."""
QUEUE_NAME_BYTES = 255
"""The longest RabbitMQ queue name, in UTF-8 bytes."""
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def local_handler_name(target_pipe: str) -> str | None:
    """The handler a ``local:<handler>`` target pipe names; None for a queue."""
    if target_pipe.startswith(LOCAL_PIPE_PREFIX):
        return target_pipe[len(LOCAL_PIPE_PREFIX) :]
    return None


def is_local_pipe(target_pipe: str) -> bool:
    """Whether items sent to ``target_pipe`` are handled in the worker, not on a queue."""
    return target_pipe.startswith(LOCAL_PIPE_PREFIX)


def is_queue_name(name: str) -> bool:
    """Whether RabbitMQ takes ``name`` as a queue's: at most 255 bytes, no surrounding white
    space, no control characters."""
    return (
        len(name.encode()) <= QUEUE_NAME_BYTES
        and name.strip() == name
        and not _CONTROL_CHARACTER.search(name)
    )
