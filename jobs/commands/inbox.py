"""The mailbox: read replies now or keep watching, and look after quarantined mail."""

from __future__ import annotations

import dataclasses
import getpass
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import typer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.models import AuditEntry, InboundMessage, InboundStatus
from jobs.commands.common import app_context, console, err_console
from jobs.commands.registry import UserError, friendly_errors
from jobs.commands.service import CONFIG_OPTION, settings_for
from jobs.locks import AdvisoryLock, InstanceConflict, SqliteInstanceLock, sqlite_path
from jobs.logsetup import configure_logging
from jobs.service import READER_LOCK  # the lock `rsvpmail serve` takes for reading
from workflows.events import get_event
from workflows.transitions import transition

inbox_app = typer.Typer(
    help="The mailbox: read replies, list and release quarantined messages.",
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
        console.print(json.dumps(dataclasses.asdict(report)))
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
    console.print(json.dumps(dataclasses.asdict(total)))


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
        console.print(f"{len(rows)} quarantined message(s)" + (f" for {event}" if event else ""))
        for row in rows:
            # One block per message, never folded: reasons are long and worth grepping.
            console.print(
                f"\n[bold]{row.id}[/]  {row.received_at:%Y-%m-%d %H:%M}  "
                f"from {row.from_address or '?'}  subject {row.subject or '(none)'!r}",
                soft_wrap=True,
                markup=True,
            )
            reason = row.error or _last_reason(db, row) or "(no reason recorded)"
            console.print(f"    reason: {reason}", soft_wrap=True, markup=False)
        console.print("release one with: rsvpmail inbox release ID")


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
            if _headers_only(row):
                err_console.print(
                    f"note: message {row.id} was too large ({row.raw_size:,} bytes); only its "
                    f"headers were stored. The whole message is in folder "
                    f"{row.server_folder or 'Quarantine'} on the mail server."
                )
            sys.stdout.buffer.write(row.raw)
            sys.stdout.buffer.flush()
            return
        console.print(f"[bold]inbound message {row.id}[/]: {row.status.value}")
        facts = {
            "Message-ID": row.message_id,
            "from": row.from_address,
            "subject": row.subject,
            "received": row.received_at.isoformat(timespec="seconds"),
            "size": f"{row.raw_size:,} bytes"
            + (" (only the headers are stored)" if _headers_only(row) else ""),
            "mailbox": f"{row.mailbox} uid {row.uid} (uidvalidity {row.uidvalidity})",
            "on the server in": row.server_folder or "(not moved yet)",
            "event id": row.event_id,
            "invitation id": row.invitation_id,
            "kind": row.kind,
            "reason": row.error,
            "resolution": row.resolution,
        }
        for name, value in facts.items():
            if value not in (None, ""):
                console.print(f"  {name}: {value}")
        if row.classification:
            console.print("  reading: " + json.dumps(row.classification, ensure_ascii=False))
        console.print("  history:")
        for entry in _history(db, row):
            console.print(
                f"    {entry.at:%Y-%m-%d %H:%M:%S} {entry.machine} {entry.entity_id}: "
                f"{entry.old_status or '-'} → {entry.new_status} by {entry.actor}: {entry.reason}"
            )


@inbox_app.command("release")
@friendly_errors
def release(
    ctx: typer.Context,
    message_id: int = typer.Argument(..., metavar="ID", help="The quarantined message's id"),
) -> None:
    """Take a message out of quarantine and process it again (one transaction)."""
    from workflows.inbound import process_inbound

    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        row = _get(db, message_id, lock=True)
        if row.status is not InboundStatus.QUARANTINED:
            raise UserError(
                f"message {row.id} is {row.status.value}; only quarantined messages can be released"
            )
        if row.raw is None or _headers_only(row):
            raise UserError(
                f"message {row.id} cannot be processed again: "
                + ("its raw bytes have been purged" if row.raw is None else
                   f"it was too large ({row.raw_size:,} bytes) and only its headers are stored; "
                   "read it in the quarantine folder on the mail server and handle it by hand")
            )  # fmt: skip
        transition(
            db, row, InboundStatus.RECEIVED, reason="released from quarantine",
            actor=_actor(), inbound_message_id=row.id,
        )  # fmt: skip
        row.error = None
        status = process_inbound(db, row)
        # The server copy sits in the quarantine folder; the reader moves it to the folder of
        # the new status at its next connection (a pending move is one with moved_at unset).
        row.moved_at = None
    console.print(f"message {message_id} released and processed again: now {status.value}")


def _get(db: Session, message_id: int, *, lock: bool = False) -> InboundMessage:
    row = db.get(InboundMessage, message_id, with_for_update=lock)
    if row is None:
        raise UserError(
            f"no inbound message with id {message_id} (see `rsvpmail inbox quarantine`)"
        )
    return row


def _headers_only(row: InboundMessage) -> bool:
    return row.raw is not None and row.raw_size > len(row.raw)


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


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def register(app: typer.Typer) -> None:
    app.add_typer(inbox_app, name="inbox", rich_help_panel="Mail")
