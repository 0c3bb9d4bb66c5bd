"""Target pipes: ``local:<handler>`` names an item handler in the worker, any other name a
RabbitMQ queue."""

from __future__ import annotations

import hashlib
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


PAUSED_PIPE_SUFFIX = "-paused"


def paused_pipe(tracking_pipe: str, partition_id: str, job_id: str) -> str:
    """The queue that holds a paused job's results until it resumes:
    ``<tracking pipe>-paused.<partition>.<job>`` (ids hold no dot), or, where that would be
    longer than RabbitMQ takes, the same with a digest of the two ids."""
    prefix = f"{tracking_pipe}{PAUSED_PIPE_SUFFIX}."
    name = f"{prefix}{partition_id}.{job_id}"
    if len(name.encode()) <= QUEUE_NAME_BYTES:
        return name
    digest = hashlib.sha256(f"{partition_id}\x00{job_id}".encode()).hexdigest()
    room = QUEUE_NAME_BYTES - len(digest)
    return prefix.encode()[:room].decode(errors="ignore") + digest
