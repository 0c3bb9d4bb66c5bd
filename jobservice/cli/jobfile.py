"""Reading a job file for ``jobservice submit``: JSON or YAML, bounded, a regular file only."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from jobservice.jobs.status import MAX_DEFINITION_BYTES


class JobFileError(ValueError):
    """A job file that cannot be read; the message says why, in one line."""


JOB_FILE_BYTES = MAX_DEFINITION_BYTES + 64 * 1024
"""The most a job file may hold: the service's limit on a definition, plus room for YAML's
layout and comments. Nothing more is read, whatever the file."""


class _JobFileLoader(yaml.SafeLoader):
    """YAML without aliases: a few lines of them can stand for more data than memory holds."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a job file; write the value out"
            )
        return super().compose_node(parent, index)


def _read(path: Path) -> bytes:
    """At most :data:`JOB_FILE_BYTES` of a regular file, or of stdin for ``-``."""
    if str(path) == "-":
        data = sys.stdin.buffer.read(JOB_FILE_BYTES + 1)
    else:
        # Opened without waiting for a writer, so that a FIFO is refused instead of hanging.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise JobFileError(
                f"{path} is not a regular file; a job file is a JSON or YAML file, or - for stdin"
            )
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(JOB_FILE_BYTES + 1)
    if len(data) > JOB_FILE_BYTES:
        raise JobFileError(
            f"{path} is larger than {JOB_FILE_BYTES:,} bytes, the most a job file may hold; put "
            "large inputs in a file and use the jsonl or directory batch type"
        )
    return data


def load_job_file(path: Path) -> dict[str, Any]:
    """The job file at ``path`` (``-``: stdin) as an object; :class:`JobFileError` says
    what is wrong with one that is not."""
    try:
        data = _read(path)
    except OSError as exc:
        raise JobFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JobFileError(
            f"{path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); a "
            "job file is JSON or YAML"
        ) from None
    try:
        body = json.loads(text) if path.suffix == ".json" else yaml.load(text, _JobFileLoader)
    except RecursionError:
        raise JobFileError(f"{path} is nested too deeply to be read") from None
    except (ValueError, yaml.YAMLError) as exc:
        problem = " ".join(str(exc).split())  # YAML's own message spans several lines
        raise JobFileError(f"{path} is not valid JSON or YAML: {problem}") from None
    if not isinstance(body, dict):
        raise JobFileError(f"{path} must hold an object with the job's fields")
    return body
