"""``jobservice pipes``: the target pipes, their limits and their rates. A pipe's limit is
items a second for every job sending to it together, shared fairly among them."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobservice.cli.shared import JsonOption, fail, run_service

if TYPE_CHECKING:
    from jobservice.db.pipes import PipeState

app = typer.Typer(
    help="Target pipes: limit what every job sending to one may do together.",
    no_args_is_help=True,
)

PipeArgument = Annotated[str, typer.Argument(help="The pipe: a queue's name, or local:<handler>.")]


def _json(state: PipeState) -> dict[str, object]:
    """A pipe as the REST API shows it."""
    fields = asdict(state)
    return {
        "name": fields["name"],
        "rateLimit": fields["rate_limit"],
        "recentItemsPerSecond": round(fields["recent_items_per_second"], 1),
        "jobs": fields["jobs"],
    }


def _line(state: PipeState) -> str:
    limit = "no limit" if state.rate_limit is None else f"limit {state.rate_limit:,g}/s"
    return (
        f"pipe {state.name}: {limit}, now {state.recent_items_per_second:,.0f}/s, "
        f"{state.jobs:,} unfinished jobs"
    )


@app.command("list")
def list_pipes(ctx: typer.Context, as_json_: JsonOption = False) -> None:
    """Every pipe with a limit or an unfinished job: its limit, its rate lately, its jobs."""
    pipes = run_service(ctx, lambda service: service.pipes())
    if as_json_:
        print(json.dumps([_json(state) for state in pipes]))
        return
    table = Table("pipe", "limit /s", "now /s", "jobs")
    for state in pipes:
        limit = "-" if state.rate_limit is None else f"{state.rate_limit:,g}"
        table.add_row(state.name, limit, f"{state.recent_items_per_second:,.0f}", f"{state.jobs:,}")
    Console().print(table)


@app.command()
def show(ctx: typer.Context, name: PipeArgument, as_json_: JsonOption = False) -> None:
    """One pipe: its limit, its rate lately and its unfinished jobs."""
    state = run_service(ctx, lambda service: service.pipe(name))
    print(json.dumps(_json(state))) if as_json_ else Console().print(_line(state), markup=False)


@app.command()
def limit(
    ctx: typer.Context,
    name: PipeArgument,
    rate_limit: Annotated[
        str,
        typer.Option(
            help="Items a second for every job sending to the pipe together; none: no limit."
        ),
    ],
    as_json_: JsonOption = False,
) -> None:
    """Limit a pipe, live: its running jobs share the limit fairly within moments, and it is
    kept in the job database. A value it cannot take exits 2 saying why."""
    rate: float | None = None
    if rate_limit.strip().lower() != "none":
        try:
            rate = float(rate_limit)
        except ValueError:
            raise fail(f"rateLimit {rate_limit!r} is not a number; give one, or none", 2) from None
    state = run_service(ctx, lambda service: service.limit_pipe(name, rate))
    print(json.dumps(_json(state))) if as_json_ else Console().print(_line(state), markup=False)
