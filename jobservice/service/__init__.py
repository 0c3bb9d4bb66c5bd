"""The service layer: the one place that submits, reads, lists, pauses, resumes and cancels
jobs, for the CLI, the REST API and embedding applications alike. :class:`JobService`, in
:mod:`jobservice.service.job_service`, is its facade; ``from jobservice import JobService``
finds it."""

from __future__ import annotations

from jobservice._moved import moved_names

# What was imported from the module this package replaced.
__getattr__ = moved_names(
    __name__,
    {
        "JobService": "jobservice.service.job_service",
        "Submission": "jobservice.service.job_service",
        "MAX_BATCH_PAGE": "jobservice.service.job_service",
    },
)
