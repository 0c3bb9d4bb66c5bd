"""Temporal workflow definitions: deterministic, no I/O. Not a public interface."""

from jobservice.workflows.batch import BatchWorkflow
from jobservice.workflows.job import JobWorkflow

__all__ = ["BatchWorkflow", "JobWorkflow"]
