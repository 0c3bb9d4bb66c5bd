"""Where the worker once was: :mod:`jobservice.processes.worker` now. Its names still import
from here, with a ``DeprecationWarning``."""

from __future__ import annotations

from jobservice._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "build_worker": "jobservice.processes.worker",
        "run_worker": "jobservice.processes.worker",
        "workflow_runner": "jobservice.processes.worker",
    },
)
