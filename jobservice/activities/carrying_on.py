"""The activities of a redrive that carries on where its job stopped: each batch writes
where it stood as it stops, and reads it back when a redrive starts it again; the round's
failed items are numbered once the tree is done (see :mod:`jobservice.db.checkpoints`)."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine
from temporalio import activity

from jobservice.db import failures
from jobservice.db.checkpoints import Checkpoints
from jobservice.execution.batch import BatchState, Checkpoint
from jobservice.execution.job import RoundKey
from jobservice.execution.names import KEEP_CHECKPOINT, LOAD_CHECKPOINT, NUMBER_ROUND


class CarryingOnActivities:
    """Checkpoints of stopping batches, and the numbering of a round; with the job database."""

    def __init__(self, engine: Engine | None) -> None:
        self._engine = engine
        self._checkpoints = Checkpoints(engine)

    @activity.defn(name=KEEP_CHECKPOINT)
    async def keep_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write where a stopping batch stood; a later stop of the same batch replaces it."""
        if checkpoint.state is None:
            return
        await self._checkpoints.keep(
            (checkpoint.partition, checkpoint.job_id),
            checkpoint.path,
            checkpoint.state.model_dump_json(),
        )

    @activity.defn(name=LOAD_CHECKPOINT)
    async def load_checkpoint(self, checkpoint: Checkpoint) -> Checkpoint:
        """Where the batch stood when its job stopped; no state if it never wrote one (it
        had not started, or stopped before it could)."""
        state = await self._checkpoints.load(
            (checkpoint.partition, checkpoint.job_id), checkpoint.path
        )
        loaded = None if state is None else BatchState.model_validate_json(state)
        return checkpoint.model_copy(update={"state": loaded})

    @activity.defn(name=NUMBER_ROUND)
    async def number_round(self, key: RoundKey) -> int:
        """Number the failed items a round sends again; how many it sends."""
        if self._engine is None:
            return 0
        return await asyncio.to_thread(
            failures.number_round, self._engine, (key.partition_id, key.job_id), key.round
        )
