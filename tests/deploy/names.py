"""The names deploy/ may use: the ``JOBSERVICE_*`` variables the settings read, and the
``jobservice`` commands with their options. Both come from the code, not from a list."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import typer
from pydantic import BaseModel

from jobservice.cli.app import app
from jobservice.settings import ENV_PREFIX, Settings


def setting_variables() -> frozenset[str]:
    """Every variable that sets something: each field, and each group as a whole (JSON)."""
    return frozenset(_variables(Settings, ENV_PREFIX.removesuffix("_")))


def _variables(model: type[BaseModel], prefix: str) -> set[str]:
    # The prefix joins a top-level field with one underscore; nested fields join with the
    # delimiter pydantic-settings is given, "__".
    delimiter = "_" if model is Settings else Settings.model_config["env_nested_delimiter"]
    names: set[str] = set()
    for field, info in model.model_fields.items():
        name = f"{prefix}{delimiter}{field.upper()}"
        names.add(name)
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            names |= _variables(info.annotation, name)
    return names


def command_problem(argv: Sequence[str]) -> str | None:
    """Why ``jobservice <argv>`` is not a command line the CLI takes, or None if it is."""
    command = typer.main.get_command(app)
    path = ["jobservice"]
    rest = list(argv)
    while isinstance(command, typer.core.TyperGroup) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        if name not in command.commands:
            return f"{' '.join(path)} has no command {name!r}; it has {sorted(command.commands)}"
        command = command.commands[name]
        path.append(name)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # what --help prints
            command.make_context(" ".join(path), rest)
    except typer.Exit:  # --help
        return None
    except Exception as exc:  # what the parser refuses: an unknown option, a missing value
        message = getattr(exc, "format_message", exc.__str__)()
        return f"{' '.join(path)}: {message or 'needs a subcommand'}"
    if isinstance(command, typer.core.TyperGroup):
        return f"{' '.join(path)} needs a subcommand, one of {sorted(command.commands)}"
    return None
