"""Whether what the service stands on answers: Temporal, the job database, RabbitMQ.

The API's ``/health`` reports each of them, and its ``/readyz`` is ready while Temporal and the
job database answer (jobs with local handlers run without RabbitMQ).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, text
from temporalio.service import ServiceClient

from jobservice.rabbitmq.broker import Broker
from jobservice.settings import RabbitSettings

OK = "ok"
_TEMPORAL_TIMEOUT = timedelta(seconds=2)
DATABASE_SECONDS = 2.5
"""How long the job database has to answer a probe: a readiness check answers within about
three seconds whatever is away (the engine's connect timeout ends the thread soon after)."""


@dataclass(frozen=True)
class Probes:
    """Each of what the service stands on: ``"ok"``, or ``"unavailable: <why>"``."""

    temporal: str
    database: str
    rabbitmq: str | None = None
    """None when not asked."""

    @property
    def healthy(self) -> bool:
        """Whether the service can work: Temporal and the job database answer."""
        return self.temporal == self.database == OK

    def problems(self) -> list[str]:
        """What keeps the service from working, for a person to read."""
        named = (("Temporal", self.temporal), ("the job database", self.database))
        return [f"{name} is {state}" for name, state in named if state != OK]


async def probe(
    temporal: ServiceClient, database: Engine, rabbitmq: RabbitSettings | None
) -> Probes:
    """Ask Temporal and the job database, and RabbitMQ unless it is None, whether they answer."""
    checks = [_temporal(temporal), _database(database)]
    if rabbitmq is not None:
        checks.append(_rabbitmq(rabbitmq))
    answers = await asyncio.gather(*checks, return_exceptions=True)
    states = [OK if a is None else f"unavailable: {_describe(a)}" for a in answers]
    return Probes(*states)


async def temporal_state(service: ServiceClient) -> str:
    """``"ok"`` when Temporal's frontend says it serves, else ``"unavailable: <why>"``: what
    the API's probes and a worker's readiness both go by."""
    try:
        await _temporal(service)
    except Exception as exc:  # whatever the connection raises: unavailable, and why
        return f"unavailable: {_describe(exc)}"
    return OK


async def _temporal(service: ServiceClient) -> None:
    if not await service.check_health(timeout=_TEMPORAL_TIMEOUT):
        raise RuntimeError("its frontend says it is not serving")


async def _database(engine: Engine) -> None:
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, engine), DATABASE_SECONDS)
    except TimeoutError:
        raise TimeoutError(f"no answer within {DATABASE_SECONDS:g} s") from None


def _select_one(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def _rabbitmq(settings: RabbitSettings) -> None:
    broker = Broker(settings)
    try:
        await broker.connection()
    finally:
        await broker.close()
