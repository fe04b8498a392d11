"""The mailbox: read replies now or keep watching, and look after quarantined mail.

Output is never folded at the terminal's width (JSON, reasons and addresses stay whole on
their line), text from mail is never read as rich markup, and times carry their zone: the
event's when the message belongs to one, else the zone all events share (UTC if they differ).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import FrameType

import typer
from rich.text import Text
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.models import AuditEntry, Event, InboundMessage, InboundStatus
from jobs.commands.common import app_context, console, err_console
from jobs.commands.corrections import organiser_actor
from jobs.commands.registry import UserError, friendly_errors
from jobs.commands.service import CONFIG_OPTION, settings_for
from jobs.locks import AdvisoryLock, InstanceConflict, SqliteInstanceLock, sqlite_path
from jobs.logsetup import configure_logging
from jobs.service import READER_LOCK  # the lock `rsvpmail serve` takes for reading
from workflows.corrections import dismiss_quarantined, headers_only
from workflows.events import get_event
from workflows.reports import event_tz

inbox_app = typer.Typer(
    help="The mailbox: read replies; list, release or dismiss quarantined messages.",
    no_args_is_help=True,
)

LOCK_RETRY_SECONDS = 1.0


@inbox_app.command("read")
@friendly_errors
def read(
    ctx: typer.Context,
    config: Path | None = CONFIG_OPTION,
    watch: bool = typer.Option(
        False,
        "--watch/--once",
        help="Keep reading (IMAP IDLE with a poll backstop) until Ctrl-C / SIGTERM, "
        "or read what is there once and exit",
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING"),
) -> None:
    """Read new replies, apply them, and file them in Processed / Review / Quarantine."""
    from jobs.imap_reader import run_forever, run_once

    configure_logging(log_level)
    settings = settings_for(ctx, config)
    app = app_context(ctx)
    factory = app.sessions()
    if not watch:
        with _reader_lock(app.engine):
            report = run_once(factory, settings.imap)
        _print_json(dataclasses.asdict(report))
        return
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        err_console.print(f"{signal.Signals(signum).name}: finishing the message in hand")
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    with _reader_lock(app.engine, wait_while=lambda: not stop.is_set()) as held:
        if not held:
            return
        total = run_forever(factory, settings.imap, stop)
    _print_json(dataclasses.asdict(total))


def _print_json(data: dict[str, object]) -> None:
    """One line of JSON on stdout, as is: no wrapping at the terminal's width, no markup."""
    typer.echo(json.dumps(data))


@contextmanager
def _reader_lock(engine: Engine, wait_while: Callable[[], bool] | None = None) -> Iterator[bool]:
    """One reader per mailbox: the file lock on SQLite, an advisory lock on PostgreSQL.

    Without `wait_while` a held lock is an error; with it, we wait (a reader that was just
    killed may hold it a moment longer) and yield False if told to stop meanwhile.
    """
    path = sqlite_path(engine)
    lock = SqliteInstanceLock(path) if path is not None else None
    advisory = None if path is not None else AdvisoryLock(engine, READER_LOCK)
    announced = False
    while True:
        try:
            if lock is not None:
                lock.acquire()
                break
            assert advisory is not None
            if advisory.try_acquire():
                break
            conflict = (
                "another rsvpmail instance is reading the mailbox (it holds the reader lock); "
                "stop it first, or let it do the reading"
            )
        except InstanceConflict as exc:
            conflict = str(exc)
        if wait_while is None:
            raise UserError(conflict)
        if not announced:
            err_console.print(f"waiting: {conflict}")
            announced = True
        time.sleep(LOCK_RETRY_SECONDS)
        if not wait_while():
            yield False
            return
    try:
        yield True
    finally:
        if lock is not None:
            lock.release()
        if advisory is not None:
            advisory.release()


@inbox_app.command("quarantine")
@friendly_errors
def quarantine(
    ctx: typer.Context,
    event: str | None = typer.Option(
        None, "--event", help="Only messages matched to this event (slug)"
    ),
) -> None:
    """List quarantined messages with the reason, date, sender and subject."""
    factory = app_context(ctx).sessions()
    with factory() as db:
        query = select(InboundMessage).where(InboundMessage.status == InboundStatus.QUARANTINED)
        if event is not None:
            query = query.where(InboundMessage.event_id == get_event(db, event).id)
        rows = db.scalars(query.order_by(InboundMessage.received_at, InboundMessage.id)).all()
        if not rows:
            console.print("no quarantined messages" + (f" for {event}" if event else ""))
            return
        fallback = _default_zone(db, event)
        console.print(f"{len(rows)} quarantined message(s)" + (f" for {event}" if event else ""))
        for row in rows:
            # One block per message, never folded: reasons are long and worth grepping.
            # Text, not markup: the sender and subject come from the mail.
            console.print()
            console.print(
                Text.assemble(
                    (str(row.id), "bold"),
                    f"  {_when(row.received_at, _zone(db, row, fallback))}  "
                    f"from {row.from_address or '?'}  subject {row.subject or '(none)'!r}",
                ),
                soft_wrap=True,
            )
            reason = row.error or _last_reason(db, row) or "(no reason recorded)"
            console.print(f"    reason: {reason}", soft_wrap=True, markup=False)
            console.print(f"    next: {_next_step(row)}", soft_wrap=True, markup=False)
        console.print()
        console.print(
            "release (to read it again): rsvpmail inbox release ID\n"
            "dismiss (handled by hand): rsvpmail inbox dismiss ID --reason TEXT",
            soft_wrap=True,
            markup=False,
        )


def _next_step(row: InboundMessage) -> str:
    """What an organiser can do with one quarantined message: release is refused for some."""
    dismiss = f"rsvpmail inbox dismiss {row.id} --reason TEXT (handled by hand)"
    if row.raw is None:
        return f"its bytes are purged, so only dismiss: {dismiss}"
    if headers_only(row):
        folder = row.server_folder or "Quarantine"
        return (
            f"too large to read again, so only dismiss: read it in folder {folder} on the mail "
            f"server, answer it by hand, then {dismiss}"
        )
    return f"rsvpmail inbox release {row.id} (to read it again) or {dismiss}"


@inbox_app.command("show")
@friendly_errors
def show(
    ctx: typer.Context,
    message_id: int = typer.Argument(..., metavar="ID", help="The inbound message's id"),
    raw: bool = typer.Option(False, "--raw", help="Write the stored message bytes to stdout"),
) -> None:
    """Show one inbound message: status, reason, reading and history (or its raw bytes)."""
    factory = app_context(ctx).sessions()
    with factory() as db:
        row = _get(db, message_id)
        if raw:
            if row.raw is None:
                raise UserError(f"message {row.id}: its raw bytes have been purged")
            if headers_only(row):
                err_console.print(
                    f"note: message {row.id} was too large ({row.raw_size:,} bytes); only its "
                    f"headers were stored. The whole message is in folder "
                    f"{row.server_folder or 'Quarantine'} on the mail server."
                )
            sys.stdout.buffer.write(row.raw)
            sys.stdout.buffer.flush()
            return
        zone = _zone(db, row, _default_zone(db, None))
        console.print(f"[bold]inbound message {row.id}[/]: {row.status.value}")
        facts = {
            "Message-ID": row.message_id,
            "from": row.from_address,
            "subject": row.subject,
            "received": _when(row.received_at, zone, seconds=True),
            "size": f"{row.raw_size:,} bytes"
            + (" (only the headers are stored)" if headers_only(row) else ""),
            "mailbox": f"{row.mailbox} uid {row.uid} (uidvalidity {row.uidvalidity})",
            "on the server in": row.server_folder or "(not moved yet)",
            "event id": row.event_id,
            "invitation id": row.invitation_id,
            "kind": row.kind,
            "reason": row.error,
            "resolution": row.resolution,
            "resolved": _when(row.resolved_at, zone, seconds=True) if row.resolved_at else None,
        }
        # Values come from the mail: printed as they are (no markup), and never folded.
        for name, value in facts.items():
            if value not in (None, ""):
                console.print(f"  {name}: {value}", soft_wrap=True, markup=False)
        if row.classification:
            reading = json.dumps(row.classification, ensure_ascii=False)
            console.print(f"  reading: {reading}", soft_wrap=True, markup=False)
        console.print("  history:")
        for entry in _history(db, row):
            console.print(
                f"    {_when(entry.at, zone, seconds=True)} {entry.machine} {entry.entity_id}: "
                f"{entry.old_status or '-'} → {entry.new_status} by {entry.actor}: "
                f"{entry.reason}",
                soft_wrap=True,
                markup=False,
            )


@inbox_app.command("release")
@friendly_errors
def release(
    ctx: typer.Context,
    message_id: int = typer.Argument(..., metavar="ID", help="The quarantined message's id"),
) -> None:
    """Take a message out of quarantine and process it again (one transaction)."""
    from workflows.corrections import release_quarantined

    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        status = release_quarantined(db, message_id, actor=organiser_actor(None))
    console.print(f"message {message_id} released and processed again: now {status.value}")


@inbox_app.command("dismiss")
@friendly_errors
def dismiss(
    ctx: typer.Context,
    message_id: int = typer.Argument(..., metavar="ID", help="The quarantined message's id"),
    reason: str = typer.Option(
        ..., "--reason", help="What you did with it, e.g. 'answered by phone' (for the audit)"
    ),
    by: str | None = typer.Option(
        None, "--by", help="Your name for the audit \\[default: $USER]", show_default=False
    ),
) -> None:
    """Close a quarantined message you handled by hand; the stored message is kept.

    It becomes processed, with your reason as its resolution, and leaves `inbox quarantine`.

    The reader moves the copy on the server out of the quarantine folder.
    """
    actor = organiser_actor(by)
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        row = dismiss_quarantined(db, message_id, reason=reason, actor=actor)
        resolution = row.resolution
    console.print(
        f"message {message_id} dismissed: now processed ({resolution})",
        soft_wrap=True,
        markup=False,
    )


def _get(db: Session, message_id: int, *, lock: bool = False) -> InboundMessage:
    row = db.get(InboundMessage, message_id, with_for_update=lock)
    if row is None:
        raise UserError(
            f"no inbound message with id {message_id} (see `rsvpmail inbox quarantine`)"
        )
    return row


def _zone(db: Session, row: InboundMessage, fallback: tzinfo) -> tzinfo:
    """The zone to show a message's times in: its event's, else `fallback`."""
    event = db.get(Event, row.event_id) if row.event_id is not None else None
    return event_tz(event) if event is not None else fallback


def _default_zone(db: Session, slug: str | None) -> tzinfo:
    """The zone for a message matched to no event (quarantined mail often is not).

    The event asked for (`--event`), else the zone every event shares (usually there is
    one event, or all are in one place); UTC only when events differ. The zone is always
    named next to the time, so the reader is never left guessing.
    """
    if slug is not None:
        return event_tz(get_event(db, slug))
    events = db.scalars(select(Event)).all()
    zones = {event_tz(event) for event in events}
    return zones.pop() if len(zones) == 1 else UTC


def _when(moment: datetime, zone: tzinfo, *, seconds: bool = False) -> str:
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M{':%S' if seconds else ''} %Z}"


def _history(db: Session, row: InboundMessage) -> list[AuditEntry]:
    return list(
        db.scalars(
            select(AuditEntry)
            .where(
                ((AuditEntry.machine == "inbound") & (AuditEntry.entity_id == row.id))
                | (AuditEntry.inbound_message_id == row.id)
            )
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    )


def _last_reason(db: Session, row: InboundMessage) -> str | None:
    return db.scalar(
        select(AuditEntry.reason)
        .where(AuditEntry.machine == "inbound", AuditEntry.entity_id == row.id)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )


def register(app: typer.Typer) -> None:
    app.add_typer(inbox_app, name="inbox", rich_help_panel="Mail")
