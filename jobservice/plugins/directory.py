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
from jobservice.plugins._split import part_bounds, resolve_in_root

LEAF_FILES = 1000


def parse_definition(definition: str) -> tuple[str, tuple[int, int] | None]:
    """Folder path and optional slice of its files."""
    text = definition.strip()
    if not text.startswith("{"):
        return text, None
    try:
        body = json.loads(text)
        a, b = body["files"]
        return str(body["path"]), (int(a), int(b))
    except (ValueError, KeyError, TypeError):
        raise BatchDefinitionError(
            f"directory definition {definition!r}: expected a path or "
            '{"path": ..., "files": [start, end]}'
        ) from None


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


class DirectoryBatchPlugin(BatchPlugin):
    """Walks a folder tree one folder per batch."""

    def process_batch(
        self,
        services: BatchWorkerServices,
        batch_definition: str,
        task_message_type: str | None,
        task_message_params: Mapping[str, str],
    ) -> None:
        path, files_slice = parse_definition(batch_definition)
        folder, root = resolve_in_root(path)
        if not folder.is_dir():
            raise BatchDefinitionError(f"directory path {path!r} is not a folder")
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
