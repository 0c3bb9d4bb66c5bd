"""Limits of target pipes: the capacity of the system behind a pipe, shared by every job that
sends to it (see :mod:`jobservice.db.pipes`). Set and read here for every face; kept in the
job database, and told to the running jobs of the pipe, which pace by their share of it."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence

from jobservice.db.pipes import (
    PipeState,
    jobs_sending_to,
    join,
    limit_of,
    pipe_states,
    set_limit,
)
from jobservice.db.rows import JobKey
from jobservice.db.store import JobStore
from jobservice.errors import InvalidRequestError, UnavailableError
from jobservice.execution.job import PipeWord
from jobservice.jobs.pipes import QUEUE_NAME_BYTES
from jobservice.jobs.steering import rate_limit_refusal
from jobservice.temporal.orchestration import JobWorkflows

_log = logging.getLogger(__name__)
_NOT_IN_A_NAME = re.compile(r"[\x00-\x1f\x7f]")
_TOLD_AT_ONCE = 20
"""Running jobs told of a pipe's new limit at the same time."""


def check_pipe_name(name: str) -> None:
    """Refuse what cannot be a target pipe's name, saying why."""
    if not name or len(name.encode()) > QUEUE_NAME_BYTES:
        raise InvalidRequestError(
            f"pipe name {name!r} must be 1 to {QUEUE_NAME_BYTES} bytes: a queue's name, or "
            "local:<handler>"
        )
    if name.strip() != name or _NOT_IN_A_NAME.search(name):
        raise InvalidRequestError(
            f"pipe name {name!r} has white space around it or a control character in it"
        )


class PipeLimits:
    """The limits of target pipes, over the job database and the jobs' workflows."""

    def __init__(self, store: JobStore, workflows: JobWorkflows) -> None:
        self._store = store
        self._workflows = workflows

    async def limit(self, name: str, rate_limit: float | None) -> PipeState:
        """Limit ``name`` to ``rate_limit`` items a second for all its jobs together (None:
        no limit); in force in every job sending to it within moments: each starts its pace
        again from now, at its share of the new limit. The jobs running are told each time,
        so that a call repeated after Temporal was away tells them all."""
        check_pipe_name(name)
        refusal = rate_limit_refusal(rate_limit)
        if refusal is not None:
            raise InvalidRequestError(refusal)
        engine = self._store.engine
        word = await asyncio.to_thread(set_limit, engine, name, rate_limit)
        await self._tell(await asyncio.to_thread(jobs_sending_to, engine, name), word)
        return await self.get(name)

    async def get(self, name: str) -> PipeState:
        """The pipe ``name``: its limit, its rate lately and its unfinished jobs."""
        check_pipe_name(name)
        (state,) = await asyncio.to_thread(pipe_states, self._store.engine, (name,), only=True)
        return state

    async def list(self) -> list[PipeState]:
        """Every pipe with a limit or an unfinished job, by name."""
        return await asyncio.to_thread(pipe_states, self._store.engine)

    async def limit_of(self, name: str) -> float | None:
        """The limit of ``name`` now; None: it has none."""
        return await asyncio.to_thread(limit_of, self._store.engine, name)

    async def joined(
        self, key: JobKey, pipe: str, *, own_limit: float | None, told: float | None
    ) -> None:
        """The job ``key``, started and ``told`` its pipe's limit, joins the pipe's users:
        the shares are dealt anew, and the jobs that took slots at the old shares are told,
        so that the pipe does not go over its limit while they use those up. The job itself
        is told too, if the limit changed since it was read."""
        try:
            deal = await asyncio.to_thread(join, self._store.engine, pipe, key, own_limit)
            if deal is not None:
                await self._tell([key, *deal.users], deal.word)
            elif told is not None:  # the limit was taken away meanwhile
                await self._tell([key], PipeWord())
        except UnavailableError as exc:
            _log.warning(
                "the jobs sending to pipe %r were not told of job %s/%s: %s", pipe, *key, exc
            )

    async def _tell(self, jobs: Sequence[JobKey], word: PipeWord) -> None:
        for start in range(0, len(jobs), _TOLD_AT_ONCE):
            await asyncio.gather(
                *(
                    self._workflows.tell_pipe(partition, job_id, word)
                    for partition, job_id in jobs[start : start + _TOLD_AT_ONCE]
                )
            )
