"""Setting up: the database, events and invitee lists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from db.engine import current_revision, head_revision, upgrade
from jobs.commands.capacity import capacity_change_lines
from jobs.commands.common import app_context, console, err_console
from jobs.commands.corrections import organiser_actor
from jobs.commands.registry import UserError, friendly_errors
from workflows.clock import now
from workflows.event_config import (
    ConfigError,
    ConfigFileError,
    EventConfig,
    file_problem,
    load_event_config,
)
from workflows.events import get_event, load_event
from workflows.invitees import (
    Removal,
    find_removals,
    import_invitees,
    parse_invitee_csv,
    remove_invitees,
)

db_app = typer.Typer(help="Database schema: create and migrate.", no_args_is_help=True)
event_app = typer.Typer(help="Events: load an event's TOML config.", no_args_is_help=True)
invitees_app = typer.Typer(
    help="Invitee lists: import from CSV, remove who was imported by mistake.",
    no_args_is_help=True,
)


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
    console.print(f"database:          {app.describe_database()}")
    console.print(f"database revision: {current_revision(app.engine) or 'none'}")
    console.print(f"code revision:     {head_revision()}")


@event_app.command("load")
@friendly_errors
def event_load(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ...,
        metavar="FILE",
        help="The event's TOML file, e.g. events/leren-van-rotterdam-zuid.toml",
    ),
    capacity_from_file: bool = typer.Option(
        False,
        "--capacity-from-file",
        help=(
            "Use the file's capacity, even when `rsvpmail capacity` changed it since the last load"
        ),
    ),
    actor: str = typer.Option("organiser", "--by", help="Who made the change (for the audit)"),
) -> None:
    """Create the event described in FILE, or update it (idempotent).

    Every problem in the file is reported with its key; nothing is loaded until all are fixed.

    A capacity set with `rsvpmail capacity` is kept if the file's capacity is as last loaded.

    --capacity-from-file applies the file's capacity in any case.
    """
    try:
        cfg = load_event_config(file)
    except ConfigFileError as exc:
        raise UserError(str(exc)) from None
    except ConfigError as exc:
        listing = "".join(f"\n  {p}" for p in exc.problems)
        raise UserError(f"{exc.source}: {_count(len(exc.problems), 'problem')}:{listing}") from None
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        loaded = load_event(db, cfg, capacity_from_file=capacity_from_file, actor=actor)
        slug = loaded.event.slug
        capacity = loaded.event.capacity
    console.print(
        f"{'created' if loaded.created else 'updated'} event {slug}: {cfg.title}",
        markup=False,
        soft_wrap=True,
    )
    if loaded.capacity_kept:
        console.print(
            f"capacity stays {capacity}, as set with `rsvpmail capacity` (the file says "
            f"{loaded.file_capacity}, unchanged since the last load); to use the file's, "
            "load again with --capacity-from-file"
        )
    if loaded.capacity_change is not None:
        for line in capacity_change_lines(slug, loaded.capacity_change):
            console.print(line)
    if cfg.ends_at < now():
        err_console.print(f"warning: {_past(cfg)}", markup=False, soft_wrap=True)


def _past(cfg: EventConfig) -> str:
    ended = cfg.ends_at.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M")
    return (
        f"event {cfg.slug} ended {ended} ({cfg.timezone}), before now; loaded all the same "
        "(for reports). If it has yet to happen, check starts_at and ends_at"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@invitees_app.command("import")
@friendly_errors
def invitees_import(
    ctx: typer.Context,
    event: str = typer.Argument(..., metavar="EVENT", help="The event's slug"),
    file: Path = typer.Argument(
        ..., metavar="FILE", help="CSV with naam/name, email, organisatie, functie, taal, batch"
    ),
) -> None:
    """Import an invitee list; a file with any problem is rejected whole."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UserError(f"{file}: {file_problem(exc)}") from None
    rows = parse_invitee_csv(data, source=str(file))
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        result = import_invitees(db, get_event(db, event), rows)
    console.print(
        f"{result.rows} invitees read: {result.new_invitations} new invitations, "
        f"{result.already_invited} already invited, {result.new_people} new people, "
        f"{result.updated_people} updated"
    )


@invitees_app.command("remove")
@friendly_errors
def invitees_remove(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(metavar="EVENT", help="The event's slug")],
    emails: Annotated[
        list[str] | None,
        typer.Argument(metavar="EMAIL", help="The invitees' e-mail addresses", show_default=False),
    ] = None,
    batch: Annotated[
        str | None, typer.Option("--batch", help="Every invitee of this imported batch")
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Your name for the audit \\[default: $USER]", show_default=False),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Take invitees off the list when nothing was sent to them yet (a mistaken import).

    Pending invitations go, and queued ones whose mail was not taken by the sender yet.

    That mail is cancelled; the invitation, participant and (if in no other event) person go.

    Who was sent an invitation or answered stays; the error says what to do instead.

    All or nothing; an audit row names who removed which address. No at the question: exit 1.
    """
    addresses = list(emails or ())
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        found = get_event(db, event)
        slug = found.slug
        removals = find_removals(db, found, emails=addresses, batch=batch)
    if not removals:
        raise UserError(f"nobody to remove from {slug}")
    _say(f"To be removed from {slug} ({_count(len(removals), 'invitee')}):")
    for r in removals:
        _say(f"  {_who(r)}: {_what(r)}")
    them = "this invitee" if len(removals) == 1 else f"these {len(removals)} invitees"
    if not yes and not typer.confirm(f"Remove {them} from {slug}?", default=False):
        console.print("nothing removed")
        raise typer.Exit(1)
    actor = organiser_actor(by)
    with factory() as db, db.begin():
        done = remove_invitees(
            db,
            get_event(db, slug),
            emails=addresses,
            batch=batch,
            actor=actor,
            expected=[r.invitation_id for r in removals],
        )
    for r in done:
        cancelled = "".join(f"; invitation mail #{m.id} cancelled" for m in r.cancels)
        person = "; person deleted" if r.person_deleted else "; person kept (known elsewhere)"
        _say(f"removed {r.email} ({r.invitation_status}{cancelled}{person})")
    _say(f"{_count(len(done), 'invitee')} removed from {slug} by {actor}")


def _who(r: Removal) -> str:
    return f"{r.name} <{r.email}>" if r.name else r.email


def _what(r: Removal) -> str:
    parts = [str(r.invitation_status)]
    if r.batch:
        parts.append(f"batch {r.batch!r}")
    for mail in r.cancels:
        tried = f", tried {_count(mail.attempts, 'time')} without success" if mail.attempts else ""
        parts.append(f"invitation mail #{mail.id} not sent yet{tried}: cancelled")
    if not r.person_deleted:
        parts.append("person kept: known elsewhere")
    return ", ".join(parts)


def _say(text: str) -> None:
    # Text, not markup: names come from the imported list. soft_wrap: never folded.
    console.print(Text(text), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db", rich_help_panel="Setup")
    app.add_typer(event_app, name="event", rich_help_panel="Setup")
    app.add_typer(invitees_app, name="invitees", rich_help_panel="Setup")
