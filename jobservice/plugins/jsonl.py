"""``jsonl``: a JSON-lines file, one item per line, split by byte ranges.

The definition is a path under the file root, optionally with a byte range ``path#START-END``.
A line belongs to the range its first byte lies in. Ranges over 1 MiB are split further, so a
file of any size is read a slice at a time, never whole. A line that is not JSON becomes a
failed item naming the file and byte offset; blank lines are skipped.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from jobservice.errors import BatchDefinitionError
from jobservice.plugin import BatchPlugin, BatchWorkerServices
from jobservice.plugins._split import check_text, part_bounds, position, resolve_in_root, shown

LEAF_BYTES = 1 << 20
_SAMPLE_BYTES = 64 << 10


_SLICE = re.compile(r"([0-9]+)-([0-9]+)", re.ASCII)


def parse_definition(definition: str) -> tuple[str, int | None, int | None]:
    """Path and optional byte range of a jsonl definition."""
    check_text("jsonl", definition)
    path, sep, span = definition.strip().rpartition("#")
    if not sep:
        path, start, end = definition.strip(), None, None
    else:
        match = _SLICE.fullmatch(span)
        if match is None:
            raise BatchDefinitionError(
                f"jsonl definition {shown(definition)}: expected PATH or PATH#START-END, with "
                "START and END byte offsets in ASCII digits (0-9), START not above END"
            )
        start, end = (
            position("jsonl", definition, match[1]),
            position("jsonl", definition, match[2]),
        )
        if end < start:
            raise BatchDefinitionError(
                f"jsonl definition {shown(definition)}: expected PATH#START-END with START not "
                "above END"
            )
    if not path:
        raise BatchDefinitionError(
            f"jsonl definition {shown(definition)} names no file; expected PATH or "
            "PATH#START-END, PATH relative to the file root"
        )
    return path, start, end


def _lines(handle: BinaryIO, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The lines whose first byte lies in ``[start, end)``, with their offsets."""
    if start > 0:
        handle.seek(start - 1)
        if handle.read(1) != b"\n":
            handle.readline()  # the rest of a line that started in an earlier range
    else:
        handle.seek(0)
    offset = handle.tell()
    while offset < end:
        line = handle.readline()
        if not line:
            return
        yield offset, line
        offset += len(line)


class JsonLinesBatchPlugin(BatchPlugin):
    """Registers each JSON line of the file as an item (its parsed value)."""

    def _open(self, definition: str) -> tuple[Path, str, int, int]:
        path, start, end = parse_definition(definition)
        resolved, _ = resolve_in_root(path)
        mode = resolved.stat()
        if not stat.S_ISREG(mode.st_mode):
            # A FIFO or a device would block or never end.
            raise BatchDefinitionError(
                f"jsonl path {shown(path)} is not a regular file; a jsonl definition names a "
                "JSON-lines file"
            )
        size = mode.st_size
        return resolved, path, start or 0, size if end is None else min(end, size)

    def check_definition(
        self, batch_definition: str, task_message_params: Mapping[str, str]
    ) -> None:
        try:
            self._open(batch_definition)
        except OSError as exc:
            raise BatchDefinitionError(
                f"jsonl definition {shown(batch_definition)} cannot be read: {exc.strerror}"
            ) from None

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        resolved, path, start, end = self._open(batch_definition)
        if end - start > LEAF_BYTES:
            for a, b in part_bounds(start, end, LEAF_BYTES):
                services.register_batch_subtask(f"{path}#{a}-{b}")
            return
        with resolved.open("rb") as handle:
            for offset, line in _lines(handle, start, end):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    services.register_invalid_item(
                        f"line at byte {offset} of {path} is not JSON: {exc}"
                    )
                    continue
                services.register_item_subtask(item)

    def estimate_items(self, batch_definition: str) -> int | None:
        resolved, _, start, end = self._open(batch_definition)
        with resolved.open("rb") as handle:
            sample = [line for _, line in _lines(handle, start, min(end, start + _SAMPLE_BYTES))]
        if not sample:
            return 0
        return round((end - start) / (sum(map(len, sample)) / len(sample)))
