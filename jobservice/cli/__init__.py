"""The ``jobservice`` command."""

from jobservice.cli.app import app

__all__ = ["app"]
