"""What the commands share: the settings the root callback read, the job options, and how a
command fails.

Exit codes: 0 done; for ``submit --wait`` and ``watch`` 0 Completed, 1 Failed, 3 Cancelled;
2 a request that cannot be carried out (bad definition, conflict, wrong state); 4 no such job;
5 Temporal unreachable.

Each command imports what it needs when it runs: the Temporal SDK, SQLAlchemy, FastAPI and
aio-pika take a second to load, which ``jobservice --help`` and a polling ``status`` must not
pay (tests/unit/test_cli_imports.py keeps it so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from jobservice.errors import JobNotFoundError, JobServiceError, UnavailableError
from jobservice.processes import eventloop

if TYPE_CHECKING:
    from jobservice.service.job_service import JobService
    from jobservice.settings import Settings

T = TypeVar("T")

PartitionOption = Annotated[str, typer.Option("--partition", "-p", help="The job's partition.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
JobIdArgument = Annotated[str, typer.Argument(help="The job id.")]


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root callback read."""
    settings: Settings = ctx.obj
    return settings


def fail(message: str, code: int) -> typer.Exit:
    """Say what went wrong on stderr; the exit to raise with ``code``."""
    # One line, however long: scripts read it, and Rich would wrap it at the terminal's width.
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def answer(ctx: typer.Context, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main``; map jobservice errors to exit codes."""
    try:
        return eventloop.run(main, uvloop=settings_of(ctx).uvloop)
    except JobNotFoundError as exc:
        raise fail(str(exc), 4) from None
    except UnavailableError as exc:
        raise fail(str(exc), 5) from None
    except JobServiceError as exc:
        raise fail(str(exc), 2) from None


def run_service(ctx: typer.Context, work: Callable[[JobService], Awaitable[T]]) -> T:
    """Run ``work`` against the configured Temporal; map jobservice errors to exit codes."""

    async def go() -> T:
        from jobservice.service.job_service import JobService

        return await work(await JobService.connect(settings_of(ctx)))

    return answer(ctx, go())
