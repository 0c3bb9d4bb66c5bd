"""Fixtures shared by every test: settings that touch nothing outside the test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobservice.processes.eventloop import loop_factory
from jobservice.settings import EngineSettings, get_settings


def unique(prefix: str) -> str:
    """An id no other test uses: job ids, task queues, partitions."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def engine() -> EngineSettings:
    """Small chunks and quick reports, so that small jobs exercise every path."""
    return EngineSettings(
        chunk_size=250,
        batch_window=3,
        chunk_window=2,
        progress_interval_seconds=0.2,
        heartbeat_timeout_seconds=2.0,
        max_attempts=3,
    )


def _product_loop() -> None:
    """Tests run on the loop the product runs on: uvloop where it is installed."""
    if loop_factory() is not None:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


_product_loop()


@pytest.fixture
def file_root(tmp_path: Path) -> Iterator[Path]:
    """Point the file plugins' root at a fresh folder for this test."""
    previous = os.environ.get("JOBSERVICE_FILE_ROOT")
    os.environ["JOBSERVICE_FILE_ROOT"] = str(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    if previous is None:
        del os.environ["JOBSERVICE_FILE_ROOT"]
    else:
        os.environ["JOBSERVICE_FILE_ROOT"] = previous
    get_settings.cache_clear()
