"""The REST API of the job service: the reference Job Service Web API's paths and bodies.

``create_app`` is imported when first asked for, so that the Python client, which reads the
API's schemas from here, does not load the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobservice.api.app import create_app


def __getattr__(name: str) -> Any:
    if name != "create_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from jobservice.api.app import create_app

    return create_app


__all__ = ["create_app"]
