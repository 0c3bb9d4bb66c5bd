"""The pattern the engine avoids: one Temporal activity per item. A baseline, not a product."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

WINDOW = 100


@activity.defn(name="naive_item")
async def naive_item(item: int) -> int:
    return item


@workflow.defn(name="NaiveJob")
class NaiveJob:
    """Runs ``count`` items, one activity each, at most ``WINDOW`` at a time."""

    @workflow.run
    async def run(self, count: int) -> int:
        done = 0
        pending: list[asyncio.Future[int]] = []
        for item in range(count):
            pending.append(
                workflow.start_activity(
                    naive_item, item, start_to_close_timeout=timedelta(seconds=60)
                )
            )
            if len(pending) >= WINDOW:
                finished, pending = await workflow.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED
                )
                done += len(finished)
        if pending:
            await workflow.wait(pending)
            done += len(pending)
        return done
