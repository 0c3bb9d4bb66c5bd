"""The keeper of paused pipes: once a job goes on, what it held goes on too.

Results of a paused job wait on its paused pipe (:mod:`jobservice.tracking.holding`). Every
half second the keeper asks the job database which jobs have results counted there and are
no longer paused, and then:

- a job resumed (Active or Waiting), or one that completed while paused (its held results
  are its own, not late duplicates): each held result
  goes on to the queue its ``to`` names, in the order it came, a slice at a time, each slice
  acked on the pipe only once the broker has confirmed it where it went; the pipe is removed
  once it is empty. A job paused again meanwhile keeps the rest; one cancelled meanwhile
  has the rest dropped in the next round.
- a job cancelled or failed: the pipe is removed with what it holds, counted as dropped.
- a job deleted: the same, and its count goes with it.

Every tracking consumer runs one; one keeper at a time reads a given pipe. A keeper
stopped midway leaves the pipe and its count for the next round: what was passed on and not
yet acked there goes on again (at least once; the window is one slice). A result held twice
(its tracking consumer stopped between holding it and acking it) goes on once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from itertools import groupby

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed
from aiormq.exceptions import ChannelAccessRefused
from sqlalchemy import Engine

from jobservice.db.gate import JobGate
from jobservice.db.paused import HeldPipe, count_released, held_pipes, pipe_gone
from jobservice.jobs.pipes import paused_pipe
from jobservice.metrics import TRACKING_DROPPED, TRACKING_RELEASED
from jobservice.rabbitmq.broker import Broker, TargetQueueMissingError
from jobservice.tracking.holding import PASSED_ON, TO_HEADER

_log = logging.getLogger(__name__)

KEEPER_SECONDS = 0.5
"""How often the keeper looks for paused pipes to pass on or drop."""
SLICE = 500
"""Held results passed on at a time, each slice confirmed where it went before it is acked."""
_QUIET_SECONDS = 0.3
"""A pipe that has sent nothing for this long is empty, as far as the keeper can tell."""
_GAP_SECONDS = 0.02
"""Within a slice, a pause this long between two messages ends the slice."""

DeadLetter = Callable[[bytes, str], Awaitable[None]]


class PausedPipes:
    """Passes on or drops what paused pipes hold, by their jobs' statuses now."""

    def __init__(
        self,
        broker: Broker,
        engine: Engine,
        gate: JobGate,
        dead_letter: DeadLetter,
        *,
        interval: float = KEEPER_SECONDS,
    ) -> None:
        self._broker = broker
        self._engine = engine
        self._gate = gate
        self._dead_letter = dead_letter
        self._interval = interval
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the paused pipes until ``stop``; while the database or the broker is away,
        say so once and go on trying."""
        while not stop.is_set():
            try:
                await self.settle()
            except Exception as exc:  # the next round tries again
                if not self._failing:
                    _log.warning("cannot pass on what paused pipes hold yet: %s", exc)
                    self._failing = True
            else:
                if self._failing:
                    _log.info("passing on what paused pipes hold again")
                    self._failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def settle(self) -> None:
        """One round: every job with held results that is no longer paused."""
        for held in await asyncio.to_thread(held_pipes, self._engine):
            if held.status in PASSED_ON:
                await self._release(held)
            else:
                await self._drop(held)

    async def _release(self, held: HeldPipe) -> None:
        """Pass on what the pipe holds, then remove it once it is empty and nobody reads it.

        One keeper at a time reads a pipe (an exclusive consumer): two would each pass on
        their share at once, out of order. Its channel is closed before the pipe is removed,
        so a message it was sent and had not taken goes back to the pipe first (RabbitMQ's
        if-empty counts only messages ready to deliver)."""
        name = self._pipe(held)
        left = held.held
        drained = False
        async with self._broker.opened_channel() as channel:
            try:
                pipe = await channel.declare_queue(name, durable=True, passive=True)
            except ChannelNotFoundEntity:  # what it held went on, or was never put there
                await asyncio.to_thread(pipe_gone, self._engine, held.key, held=held.held)
                return
            try:
                taker = await _Taker.start(channel, pipe)
            except ChannelAccessRefused:
                return  # another keeper reads it
            passed: set[str] = set()
            while await self._gate.status(*held.key, fresh=True) in PASSED_ON:
                messages = await taker.take()
                if not messages:
                    drained = True
                    break
                published = await self._pass_on([m for m in messages if _first(m, passed)])
                await messages[-1].ack(multiple=True)
                await asyncio.to_thread(count_released, self._engine, held.key, len(messages))
                TRACKING_RELEASED.inc(published)
                left -= len(messages)
        # Paused again, or ended (the next round drops the rest), or more came meanwhile: the
        # pipe stays for the next round.
        if drained and await self._remove_if_empty(name):
            await asyncio.to_thread(pipe_gone, self._engine, held.key, held=left)
            _log.info("passed on what job %s held while paused", held.key[1])

    async def _remove_if_empty(self, name: str) -> bool:
        """Remove the pipe if nothing is in it and nobody reads it; whether it is gone."""
        async with self._broker.opened_channel() as channel:
            try:
                await channel.queue_delete(name, if_unused=True, if_empty=True)
            except ChannelPreconditionFailed:
                return False
            except ChannelNotFoundEntity:
                pass
        self._broker.forget_queue(name)
        return True

    async def _pass_on(self, messages: list[AbstractIncomingMessage]) -> int:
        """Each to the queue its header names, in order; to the dead-letter queue, with the
        reason, what names no queue that exists. How many were passed on."""
        published = 0
        for queue, group in groupby(messages, key=_to):
            bodies = [message.body for message in group]
            if queue is None:
                reason = "a held result without the queue to pass it on to"
                await self._dead_letter_all(bodies, reason)
                continue
            try:
                await self._broker.publish(queue, bodies)
            except TargetQueueMissingError as exc:
                await self._dead_letter_all(bodies, f"could not forward to {queue!r}: {exc}")
                continue
            published += len(bodies)
        return published

    async def _dead_letter_all(self, bodies: list[bytes], reason: str) -> None:
        for body in bodies:
            await self._dead_letter(body, reason)

    async def _drop(self, held: HeldPipe) -> None:
        name = self._pipe(held)
        async with self._broker.opened_channel() as channel:
            try:
                deleted = await channel.queue_delete(name)
                dropped = deleted.message_count or 0
            except ChannelNotFoundEntity:
                dropped = 0
        self._broker.forget_queue(name)
        TRACKING_DROPPED.labels("held").inc(dropped)
        if held.status is None:
            await asyncio.to_thread(
                pipe_gone, self._engine, held.key, held=held.held, job_deleted=True
            )
        else:
            await asyncio.to_thread(
                count_released, self._engine, held.key, held.held, dropped=dropped
            )
        if dropped:
            _log.info(
                "dropped %d results job %s held while paused: it is %s",
                dropped,
                held.key[1],
                "deleted" if held.status is None else held.status,
            )

    def _pipe(self, held: HeldPipe) -> str:
        return paused_pipe(self._broker.settings.tracking_pipe, *held.key)


class _Taker:
    """Takes a pipe's messages in the order they were put there, a slice at a time, by
    consuming it alone with a slice's prefetch: one round trip a slice, not one a message.
    What it was sent and did not take goes back to the pipe when its channel closes."""

    def __init__(self) -> None:
        self._arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    @classmethod
    async def start(cls, channel: AbstractChannel, pipe: AbstractQueue) -> _Taker:
        """Consume ``pipe``; ChannelAccessRefused when another consumer reads it."""
        taker = cls()
        await channel.set_qos(prefetch_count=SLICE)
        await pipe.consume(taker._arrive, no_ack=False, exclusive=True)
        return taker

    async def _arrive(self, message: AbstractIncomingMessage) -> None:
        self._arrived.put_nowait(message)

    async def take(self) -> list[AbstractIncomingMessage]:
        """Up to a slice of messages, unacked; none once the pipe has been quiet a while."""
        try:
            taken = [await asyncio.wait_for(self._arrived.get(), _QUIET_SECONDS)]
        except TimeoutError:
            return []
        while len(taken) < SLICE:
            try:
                taken.append(await asyncio.wait_for(self._arrived.get(), _GAP_SECONDS))
            except TimeoutError:
                break
        return taken


def _first(message: AbstractIncomingMessage, passed: set[str]) -> bool:
    """Whether ``message`` is the first result of its item on the pipe: a tracking consumer
    stopped between holding a result and acking it holds it again when it comes again."""
    try:
        task_id = json.loads(message.body)["tracking"]["jobTaskId"]
    except (ValueError, LookupError, TypeError):
        return True
    if not isinstance(task_id, str):
        return True
    if task_id in passed:
        TRACKING_DROPPED.labels("duplicate").inc()
        return False
    passed.add(task_id)
    return True


def _to(message: AbstractIncomingMessage) -> str | None:
    to = (message.headers or {}).get(TO_HEADER)
    if isinstance(to, bytes):
        to = to.decode(errors="replace")
    return to if isinstance(to, str) and to else None
