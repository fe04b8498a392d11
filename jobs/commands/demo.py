"""`rsvpmail demo`: the whole example event, played against the local mail stack."""

from __future__ import annotations

from pathlib import Path

import typer

from jobs.commands.common import console
from jobs.commands.registry import friendly_errors
from jobs.logsetup import configure_logging


def demo(
    seconds: float = typer.Option(
        120.0, help="Real seconds for the whole timeline (9 Jan → 3 Feb 2023)"
    ),
    database: Path = typer.Option(Path("rsvpmail.db"), help="SQLite file to (re)create and keep"),
    workdir: Path = typer.Option(Path(".demo"), help="Where the mail stack keeps its mailboxes"),
    log_level: str = typer.Option("WARNING", help="Service log level during the demo"),
) -> None:
    """Run the example event end to end: service, simulated invitees, final status."""
    from jobs.demo import DemoOptions, run_demo

    configure_logging(log_level)
    run_demo(DemoOptions(database=database, workdir=workdir, seconds=seconds, console=console))


def register(app: typer.Typer) -> None:
    app.command("demo", rich_help_panel="Service")(friendly_errors(demo))
