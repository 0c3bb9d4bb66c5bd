"""Temporal workflow definitions: deterministic, no I/O. Not a public interface."""
