"""The services tests run against (RabbitMQ, PostgreSQL): what a missing one means."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def service_missing(message: str) -> NoReturn:
    """Skip the test on a machine without the service; fail it in CI, where ``CI`` is set.

    CI starts every service before the tests, so one missing there is a broken run, and a
    skip would let it pass.
    """
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
