"""Where the plugin registry once was: :mod:`jobservice.plugins.registry` now. Its names still
import from here, with a ``DeprecationWarning``."""

from __future__ import annotations

from jobservice._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {"Registry": "jobservice.plugins.registry", "installed": "jobservice.plugins.registry"},
)
