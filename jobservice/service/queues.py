"""Whether a job's target queue exists, asked of RabbitMQ as the job is submitted: a job to a
queue that is not there is refused at once, naming the queue, whatever its kind (a batch or a
single task), unless the settings say to declare missing queues."""

from __future__ import annotations

import asyncio
import logging
import time

from jobservice.errors import InvalidJobError
from jobservice.jobs.pipes import is_local_pipe
from jobservice.rabbitmq.broker import Broker, BrokerUnavailableError
from jobservice.settings import RabbitSettings

_log = logging.getLogger(__name__)
CHECK_SECONDS = 1.0
"""How long a submit waits for RabbitMQ to say whether the queue is there."""
KNOWN_SECONDS = 60.0
"""How long a queue found is taken to be there without asking again."""


class TargetQueues:
    """The target queues of jobs as they are submitted."""

    def __init__(self, settings: RabbitSettings) -> None:
        self._settings = settings
        self._found: dict[str, float] = {}

    async def check(self, pipe: str) -> None:
        """Refuse ``pipe`` with a :class:`~jobservice.rabbitmq.broker.TargetQueueMissingError`
        when it is a queue RabbitMQ does not have. With RabbitMQ away the job is taken: it
        waits for the broker, as a running job does."""
        if is_local_pipe(pipe) or self._settings.declare_target_queues:
            return
        found = self._found.get(pipe)
        if found is not None and time.monotonic() - found < KNOWN_SECONDS:
            return
        broker = Broker(self._settings)
        try:
            await asyncio.wait_for(broker.ensure_queue(pipe, declare=False), CHECK_SECONDS)
        except (BrokerUnavailableError, TimeoutError) as exc:
            _log.info("target queue %r could not be checked: %s", pipe, exc or "no answer")
            return
        except ValueError:  # the AMQP client refuses the name before anything is sent
            raise InvalidJobError(
                f"targetPipe {pipe!r} is not a queue name the service's AMQP client can use: "
                "letters, digits, spaces and - _ . : @ # , / + only"
            ) from None
        finally:
            await broker.close()
        self._found[pipe] = time.monotonic()
