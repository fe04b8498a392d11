"""Collects the command modules into one typer app, grouped by what an organiser is doing."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

P = ParamSpec("P")
R = TypeVar("R")

# Module name in jobs.commands, in the order they appear in --help. Each module defines
# `register(app: typer.Typer) -> None`.
COMMAND_MODULES = (
    "setup",  # db upgrade, event load, invitees import
    "mailing",  # invite, outbox send/list/retry
    "preview",  # preview EVENT KIND: a rendered mail, sent nowhere
    "inbox",  # read, quarantine, show, release
    "understanding",  # classify
    "organiser",  # status, review, people, export, attendance, audit
    "corrections",  # answer, offer: corrections by hand
    "capacity",  # capacity EVENT N
    "service",  # serve, check
    "demo",  # the example event, end to end
    "privacy",  # privacy purge, export, forget
)


class UserError(Exception):
    """An error the user can fix; shown as one line without a traceback."""


def install(app: typer.Typer) -> None:
    from jobs.commands.common import install_root_options

    install_root_options(app)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"jobs.commands.{name}")
        module.register(app)


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected errors into `error: …` on stderr and exit code 2 (no traceback).

    A database URL that cannot work is one of them (DatabaseUrlError: raised only where the
    engine is made and first connects, see common.AppContext.engine); SQLAlchemy errors
    raised later, inside a command's work, are not: they are bugs or need their traceback.
    """
    from db.engine import DatabaseNotReady, DatabaseUrlError
    from workflows.errors import RsvpError

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (UserError, RsvpError, DatabaseNotReady, DatabaseUrlError, OSError) as exc:
            typer.secho(f"error: {exc}", err=True, fg="red")
            raise typer.Exit(2) from None

    return wrapper
