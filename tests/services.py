"""The services tests run against (RabbitMQ, PostgreSQL): what a missing one means."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

ALLOW_SKIP = "JOBSERVICE_TEST_ALLOW_SKIP"


def service_missing(message: str) -> NoReturn:
    """Fail the test: a service it needs is missing. Skip it instead only where the person
    running the tests asked for that with ``JOBSERVICE_TEST_ALLOW_SKIP=1``.

    A skip is a green run that tested nothing, so it has to be asked for: no runner's
    environment (a CI without ``CI`` set, a machine without PostgreSQL) can turn half the
    suite into silent skips. ``scripts/ensure-services`` (``make services``) sets up
    everything the tests need.
    """
    if os.environ.get(ALLOW_SKIP) == "1":
        pytest.skip(f"{message} ({ALLOW_SKIP}=1)")
    pytest.fail(
        f"{message}\nscripts/ensure-services (make services) sets it up;"
        f" {ALLOW_SKIP}=1 skips the tests that need it instead"
    )
