"""Setting up: the database, events and invitee lists."""

from __future__ import annotations

from pathlib import Path

import typer

from db.engine import current_revision, head_revision, upgrade
from jobs.commands.capacity import capacity_change_lines
from jobs.commands.common import app_context, console
from jobs.commands.registry import UserError, friendly_errors
from workflows.event_config import ConfigError, load_event_config
from workflows.events import get_event, load_event
from workflows.invitees import import_invitees, parse_invitee_csv

db_app = typer.Typer(help="Database schema: create and migrate.", no_args_is_help=True)
event_app = typer.Typer(help="Events: load an event's TOML config.", no_args_is_help=True)
invitees_app = typer.Typer(help="Invitee lists: import from CSV.", no_args_is_help=True)


@db_app.command("upgrade")
@friendly_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Create the tables or migrate them to this version (safe to run again)."""
    app = app_context(ctx)
    before = current_revision(app.engine)
    upgrade(app.engine)
    after = current_revision(app.engine)
    where = app.engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"database {where} is up to date (revision {after})")
    else:
        console.print(f"database {where} migrated from {before or 'empty'} to {after}")


@db_app.command("status")
@friendly_errors
def db_status(ctx: typer.Context) -> None:
    """Show the database's migration revision and the code's."""
    app = app_context(ctx)
    console.print(f"database revision: {current_revision(app.engine) or 'none'}")
    console.print(f"code revision:     {head_revision()}")


@event_app.command("load")
@friendly_errors
def event_load(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="The event's TOML file, e.g. events/leren-van-rotterdam-zuid.toml"
    ),
    capacity_from_file: bool = typer.Option(
        False,
        "--capacity-from-file",
        help="Set the capacity to the file's, even when `rsvpmail capacity` changed it since",
    ),
    actor: str = typer.Option("organiser", "--by", help="Who made the change (for the audit)"),
) -> None:
    """Create the event described in FILE, or update it (idempotent).

    A capacity changed with `rsvpmail capacity` is kept unless the file's capacity changed
    since the last load, or --capacity-from-file is given.
    """
    try:
        cfg = load_event_config(file)
    except ConfigError as exc:
        raise UserError(
            f"{exc.source}: {len(exc.problems)} problem(s): " + "; ".join(exc.problems)
        ) from None
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        loaded = load_event(db, cfg, capacity_from_file=capacity_from_file, actor=actor)
        slug = loaded.event.slug
        capacity = loaded.event.capacity
    console.print(f"{'created' if loaded.created else 'updated'} event {slug}: {cfg.title}")
    if loaded.capacity_kept:
        console.print(
            f"capacity stays {capacity}, as set with `rsvpmail capacity` (the file says "
            f"{loaded.file_capacity}, unchanged since the last load); to use the file's, "
            "load again with --capacity-from-file"
        )
    if loaded.capacity_change is not None:
        for line in capacity_change_lines(slug, loaded.capacity_change):
            console.print(line)


@invitees_app.command("import")
@friendly_errors
def invitees_import(
    ctx: typer.Context,
    event: str = typer.Argument(..., help="The event's slug"),
    file: Path = typer.Argument(
        ..., help="CSV with naam/name, email, organisatie, functie, taal, batch"
    ),
) -> None:
    """Import an invitee list; a file with any problem is rejected whole."""
    rows = parse_invitee_csv(file.read_bytes(), source=str(file))
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        result = import_invitees(db, get_event(db, event), rows)
    console.print(
        f"{result.rows} invitees read: {result.new_invitations} new invitations, "
        f"{result.already_invited} already invited, {result.new_people} new people, "
        f"{result.updated_people} updated"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db", rich_help_panel="Setup")
    app.add_typer(event_app, name="event", rich_help_panel="Setup")
    app.add_typer(invitees_app, name="invitees", rich_help_panel="Setup")
