"""The ``jobservice`` command: one root Typer app over the server commands
(:mod:`jobservice.cli.servers`), the job commands (:mod:`jobservice.cli.jobs`) and the pipe
commands (:mod:`jobservice.cli.pipes`), a thin layer over the service layer. Exit codes are
in :mod:`jobservice.cli.shared`."""

from __future__ import annotations

import logging

import typer

from jobservice.cli import jobs, pipes, servers
from jobservice.cli.shared import fail

app = typer.Typer(
    name="jobservice",
    help="Batch jobs on Temporal: split huge batches, process every item, track progress.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Without a name, a sub-app's commands join the root's, in this order; groups list last.
app.add_typer(servers.app)
app.add_typer(jobs.app)
app.add_typer(servers.db_app, name="db")
app.add_typer(pipes.app, name="pipes")

_RECONNECT_LOGGERS = ("aiormq.connection", "aio_pika.robust_connection", "aio_pika.tools")


@app.callback()
def root(ctx: typer.Context) -> None:
    """Settings come from JOBSERVICE_* variables, e.g. JOBSERVICE_TEMPORAL__ADDRESS."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    # RabbitMQ's client libraries log each failed try to reconnect; the worker and the tracking
    # consumer say once themselves that the broker is away, and once that it is back.
    for name in _RECONNECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from jobservice.settings import InvalidSettingsError, get_settings

    try:
        ctx.obj = get_settings()
    except InvalidSettingsError as exc:
        raise fail(str(exc), 2) from None
