"""Helpers the built-in plugins share."""

from __future__ import annotations

import errno
import re
from pathlib import Path

from jobservice.errors import BatchDefinitionError
from jobservice.settings import get_settings

FAN_OUT = 10
MAX_INT64 = 2**63 - 1
"""The most a position in a definition may be: what the job database's BIGINT columns and a
worker's 64-bit integers hold."""

_ASCII_DIGITS = re.compile(r"[0-9]+")
_SHOWN = 60
_UNRESOLVABLE = {errno.ENAMETOOLONG, errno.ELOOP}


def part_bounds(start: int, end: int, leaf: int, fan_out: int = FAN_OUT) -> list[tuple[int, int]]:
    """``[start, end)`` in at most ``fan_out`` parts, none smaller than ``leaf`` but the last."""
    size = max(leaf, -(-(end - start) // fan_out))
    return [(a, min(a + size, end)) for a in range(start, end, size)]


def shown(definition: str) -> str:
    """A definition as an error message quotes it: its start only, when it is long."""
    if len(definition) <= _SHOWN:
        return repr(definition)
    return f"{definition[:_SHOWN]!r}… ({len(definition):,} characters)"


def check_text(kind: str, definition: str) -> None:
    """Refuse a definition holding a NUL byte: no file name, number or id has one."""
    if "\x00" in definition:
        raise BatchDefinitionError(
            f"{kind} definition {shown(definition)} holds a NUL byte (\\x00); a definition is "
            "text without NUL bytes"
        )


def position(kind: str, definition: str, text: str) -> int:
    """A whole number of a definition, in ASCII digits, at most :data:`MAX_INT64`.

    ``int()`` alone would take any script's digits, and thousands of them."""
    if _ASCII_DIGITS.fullmatch(text) is None:
        raise BatchDefinitionError(
            f"{kind} definition {shown(definition)}: {text!r} is not a whole number in ASCII "
            "digits (0-9)"
        )
    if len(text.lstrip("0")) > len(str(MAX_INT64)) or int(text) > MAX_INT64:
        raise BatchDefinitionError(
            f"{kind} definition {shown(definition)}: {shown(text)} is too large; positions "
            f"are at most {MAX_INT64:,} (2**63 - 1)"
        )
    return int(text)


def resolve_in_root(path: str) -> tuple[Path, Path]:
    """``path`` resolved in the configured file root, and the root; refuses what lies outside."""
    check_text("path", path)
    root = get_settings().file_root.resolve()
    try:
        resolved = (root / path).resolve()
        exists = resolved.exists()
    except RuntimeError:  # a loop of symbolic links, before Python 3.13
        raise BatchDefinitionError(
            f"path {shown(path)} cannot be resolved: it is a loop of symbolic links"
        ) from None
    except OSError as exc:
        if exc.errno not in _UNRESOLVABLE:
            raise  # perhaps passing, on a network file system: left to the caller
        raise BatchDefinitionError(
            f"path {shown(path)} cannot be resolved: {exc.strerror}"
        ) from None
    if not resolved.is_relative_to(root):
        raise BatchDefinitionError(
            f"path {shown(path)} is outside the configured root {str(root)!r} "
            "(JOBSERVICE_FILE_ROOT); paths are relative to it, and stay inside it"
        )
    if not exists:
        raise BatchDefinitionError(f"path {shown(path)} does not exist under {str(root)!r}")
    return resolved, root
