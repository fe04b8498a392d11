"""Understanding replies: `rsvpmail classify` reads .eml files the way the service would.

No database and no network: handy to check a puzzling reply, or a new fixture, by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jobs.commands.registry import UserError, friendly_errors
from workflows.event_config import ConfigError, load_event_config
from workflows.understand import understand


@friendly_errors
def classify(
    event: Annotated[
        Path,
        typer.Option(
            "--event",
            help="Path of the event's TOML file, e.g. events/my-event.toml (not its slug: "
            "no database is used); its sessions and language guide the reading",
        ),
    ],
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="One or more .eml files")],
) -> None:
    """Print how each .eml file is understood: one JSON object per file per line.

    No database and no network: the event's sessions come from its TOML file (--event).
    """
    if not event.exists():
        raise UserError(
            f"--event {event}: no such file; --event takes the path of the event's TOML file "
            "(e.g. events/my-event.toml), not its slug"
        )
    try:
        cfg = load_event_config(event)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    # Read every file first so a missing one fails before any output is printed.
    contents: list[tuple[Path, bytes]] = []
    for path in files:
        try:
            contents.append((path, path.read_bytes()))
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    for path, raw in contents:
        result = understand(raw, cfg.sessions, default_language=cfg.language)
        typer.echo(json.dumps(result.as_json_dict(str(path)), ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.command("classify", rich_help_panel="Replies")(classify)
