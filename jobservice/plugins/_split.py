"""Helpers the built-in plugins share."""

from __future__ import annotations

from pathlib import Path

from jobservice.errors import BatchDefinitionError
from jobservice.settings import get_settings

FAN_OUT = 10


def part_bounds(start: int, end: int, leaf: int, fan_out: int = FAN_OUT) -> list[tuple[int, int]]:
    """``[start, end)`` in at most ``fan_out`` parts, none smaller than ``leaf`` but the last."""
    size = max(leaf, -(-(end - start) // fan_out))
    return [(a, min(a + size, end)) for a in range(start, end, size)]


def resolve_in_root(path: str) -> tuple[Path, Path]:
    """``path`` resolved in the configured file root, and the root; refuses what lies outside."""
    root = get_settings().file_root.resolve()
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise BatchDefinitionError(
            f"path {path!r} is outside the configured root {str(root)!r} (JOBSERVICE_FILE_ROOT)"
        )
    if not resolved.exists():
        raise BatchDefinitionError(f"path {path!r} does not exist under {str(root)!r}")
    return resolved, root
