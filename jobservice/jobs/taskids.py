"""Task ids in the reference system's hierarchy: ``partition:jobId.<batch path>.<item number>``.

Within a batch, its sub-batches are numbered 1 to s, in the order the plugin registered them,
and its items after them: item n (from 0) of a batch with s sub-batches is number s + n + 1.
"""

from __future__ import annotations

from collections.abc import Sequence


def job_task_id(
    partition: str, job_id: str, batch_path: Sequence[int] = (), item: int | None = None
) -> str:
    """``partition:jobId.2.17`` for item 17 of sub-batch 2; indexes count from 1."""
    parts = [f"{partition}:{job_id}", *(str(i) for i in batch_path)]
    if item is not None:
        parts.append(str(item))
    return ".".join(parts)


def item_number(sub_batch_total: int, index: int) -> int:
    """The number in the task ids of item ``index`` (from 0, in registration order) of a batch
    with ``sub_batch_total`` sub-batches: its items are numbered after its sub-batches."""
    return sub_batch_total + index + 1


def item_index(sub_batch_total: int, number: int) -> int:
    """The index (from 0) of the item numbered ``number`` in a batch with ``sub_batch_total``
    sub-batches; the inverse of :func:`item_number`. A sub-batch's number gives one below 0."""
    return number - sub_batch_total - 1


def parse_job_task_id(task_id: str) -> tuple[str, str, tuple[int, ...]]:
    """Split a task id into partition, job id and the numeric path below the job."""
    partition, sep, rest = task_id.partition(":")
    if not sep or not partition:
        raise ValueError(f"task id {task_id!r} has no 'partition:' prefix")
    job_id, *path = rest.split(".")
    if not job_id:
        raise ValueError(f"task id {task_id!r} names no job")
    try:
        return partition, job_id, tuple(int(p) for p in path)
    except ValueError:
        raise ValueError(f"task id {task_id!r} has a non-numeric path") from None


def split_item(task_id: str) -> tuple[str, int] | None:
    """An item's task id ``partition:job.2.17`` as its batch's task id and its number,
    ``("partition:job.2", 17)``; ``None`` when it does not end in a number."""
    batch, dot, number = task_id.rpartition(".")
    if not dot or not (number.isascii() and number.isdigit()):
        return None
    return batch, int(number)


def workflow_id(partition: str, job_id: str, batch_path: Sequence[int] = ()) -> str:
    """Readable workflow ids: ``job/{partition}/{jobId}``, sub-batches below it."""
    return "/".join(["job", partition, job_id, *(str(i) for i in batch_path)])
