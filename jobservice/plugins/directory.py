"""``directory``: a folder tree. Sub-folders become sub-batches, files become items.

The definition is a folder path under the file root (``JOBSERVICE_FILE_ROOT``); a path outside
it is refused. Items are file paths relative to the root, with ``/``. A folder with more than
1,000 files is split into slices of its sorted file list (``{"path": ..., "files": [a, b]}``).
Symbolic links to folders are not followed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from jobservice.errors import BatchDefinitionError
from jobservice.plugin import BatchPlugin, BatchWorkerServices
from jobservice.plugins._split import check_text, part_bounds, position, resolve_in_root, shown

LEAF_FILES = 1000


def parse_definition(definition: str) -> tuple[str, tuple[int, int] | None]:
    """Folder path and optional slice of its files."""
    check_text("directory", definition)
    text = definition.strip()
    if not text.startswith("{"):
        return text, None
    expected = (
        f"directory definition {shown(definition)}: expected a FOLDER path or "
        '{"path": FOLDER, "files": [START, END]}, with START and END whole numbers, '
        "0 <= START <= END"
    )
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise BatchDefinitionError(expected) from None
    if not (isinstance(body, dict) and set(body) == {"path", "files"}):
        raise BatchDefinitionError(expected)
    path, files = body["path"], body["files"]
    if not (isinstance(path, str) and isinstance(files, list) and len(files) == 2):
        raise BatchDefinitionError(expected)
    if not all(type(n) is int for n in files):  # not bool, not float
        raise BatchDefinitionError(expected)
    a, b = (position("directory", definition, str(n)) if n >= 0 else -1 for n in files)
    if not 0 <= a <= b:
        raise BatchDefinitionError(expected)
    check_text("directory", path)
    return path, (a, b)


def _listing(folder: Path) -> tuple[list[str], list[str]]:
    folders: list[str] = []
    files: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.name)
            elif entry.is_file():
                files.append(entry.name)
    return sorted(folders), sorted(files)


def _folder(path: str) -> tuple[Path, Path]:
    folder, root = resolve_in_root(path)
    if not folder.is_dir():
        raise BatchDefinitionError(
            f"directory path {shown(path)} is not a folder; a directory definition names a "
            "folder under the file root"
        )
    return folder, root


class DirectoryBatchPlugin(BatchPlugin):
    """Walks a folder tree one folder per batch."""

    def check_definition(
        self, batch_definition: str, task_message_params: Mapping[str, str]
    ) -> None:
        path, _ = parse_definition(batch_definition)
        try:
            _folder(path)
        except OSError as exc:
            raise BatchDefinitionError(
                f"directory definition {shown(batch_definition)} cannot be read: {exc.strerror}"
            ) from None

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        path, files_slice = parse_definition(batch_definition)
        folder, root = _folder(path)
        relative = folder.relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        folders, files = _listing(folder)
        if files_slice is not None:
            a, b = files_slice
            for name in files[a:b]:
                services.register_item_subtask(prefix + name)
            return
        for name in folders:
            services.register_batch_subtask(prefix + name)
        if len(files) > LEAF_FILES:
            for a, b in part_bounds(0, len(files), LEAF_FILES):
                services.register_batch_subtask(json.dumps({"path": relative, "files": [a, b]}))
            return
        for name in files:
            services.register_item_subtask(prefix + name)
