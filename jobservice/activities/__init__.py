"""Temporal activities: every touch of plugins, builders, handlers and brokers happens here."""

from jobservice.activities.batch import BatchActivities

__all__ = ["BatchActivities"]
