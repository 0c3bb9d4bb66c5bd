"""Temporal activities: every touch of plugins, builders, handlers and brokers happens here."""
