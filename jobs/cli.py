"""The `rsvpmail` command line.

Each area registers its commands from its own module (jobs/commands/*.py) so that the
command tree stays readable here and modules stay small.
"""

from __future__ import annotations

import sys

import typer

from jobs.commands import registry

app = typer.Typer(
    name="rsvpmail",
    help="Run the registration of an invitation-only event by email.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
registry.install(app)


def main() -> None:
    """Console entry point: one clear line and a non-zero exit code for expected errors."""
    try:
        app()
    except registry.UserError as exc:  # pragma: no cover - typer normally exits first
        typer.secho(f"error: {exc}", err=True, fg="red")
        sys.exit(2)


if __name__ == "__main__":
    main()
