"""Sending mail: invitation batches and the outbox (send, list, retry)."""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from db.engine import transaction
from db.models import OutboundStatus
from jobs.commands.common import CONFIG_OPTION, app_context, console, err_console, settings_for
from jobs.commands.organiser import plural
from jobs.commands.registry import UserError, friendly_errors
from jobs.settings import DEFAULTS_SOURCE, ServiceSettings
from jobs.smtp_sender import SendReport, SmtpConfigError, send_due
from workflows.events import get_event
from workflows.invitations import queue_invitations, summarise_selection
from workflows.reports import event_tz
from workflows.sending import count_due, outbox_rows, retry_failed

outbox_app = typer.Typer(help="The outbox: send what is due, list, retry.", no_args_is_help=True)

# Invitations are queued in chunks of this many per transaction, so a batch of thousands
# never holds the database's write lock for long (replies keep being processed meanwhile).
QUEUE_CHUNK = 100

# The exit code when mail was due and none of it could be sent (it stays queued).
NOTHING_SENT = 1


def smtp_server(settings: ServiceSettings) -> str:
    """`SMTP server HOST:PORT (where that came from)`, as the send commands report it."""
    smtp = settings.smtp
    host, port = settings.origin("smtp", "host"), settings.origin("smtp", "port")
    if host == port == "default":
        if settings.source == DEFAULTS_SOURCE:
            why = "the default: no --config file given"
        else:
            why = f"the default: {settings.source} sets no [smtp] host or port"
    elif host == port:
        why = f"from {host}"
    else:

        def said(origin: str) -> str:
            return "the default" if origin == "default" else f"from {origin}"

        why = f"host {said(host)}, port {said(port)}"
    return f"SMTP server {smtp.host}:{smtp.port} ({why})"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@friendly_errors
def invite(
    ctx: typer.Context,
    event_slug: str = typer.Argument(..., metavar="EVENT", help="The event's slug"),
    batch: str | None = typer.Option(None, "--batch", help="Only invitees of this batch"),
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Only this address (repeat for more); re-sends a bounced one"),
    ] = None,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show one example and the count; queue nothing"
    ),
    send: bool = typer.Option(True, "--send/--no-send", help="Send right away after queueing"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Queue the invitation for everyone selected who has not been invited yet.

    The exit code is 1 when mail was due and none of it could be sent (it stays queued).
    """
    app = app_context(ctx)
    app.use_config(ctx, config)  # its [database] url too, like `rsvpmail -c FILE invite …`
    factory = app.sessions()
    with transaction(factory) as db:
        event = get_event(db, event_slug)
        selection = summarise_selection(db, event, batch=batch, only=only)
    skipped = f"{selection.already_invited} already invited"
    if selection.unsubscribed:
        skipped += f", {selection.unsubscribed} unsubscribed (left out)"
    if dry_run:
        _show_example(factory, event_slug, batch, only)
        console.print(
            f"dry run: would queue {plural(selection.to_queue, 'invitation')} ({skipped})"
        )
        return
    settings = app.settings() if send else None
    queued = _queue_in_chunks(factory, event_slug, batch, only, selection.to_queue)
    console.print(f"queued {plural(queued, 'invitation')} ({skipped})")
    if settings is not None:
        report = _send_with_progress(factory, settings)
        _exit_if_nothing_sent(report, settings)


def _queue_in_chunks(
    factory: sessionmaker[Session],
    event_slug: str,
    batch: str | None,
    only: list[str] | None,
    total: int,
) -> int:
    queued = 0
    with _progress() as bar:
        task = bar.add_task("queueing", total=total)
        while True:
            with transaction(factory) as db:
                event = get_event(db, event_slug)
                rows = queue_invitations(db, event, batch=batch, only=only, limit=QUEUE_CHUNK)
            if not rows:
                break
            queued += len(rows)
            bar.update(task, completed=queued)
    return queued


def _show_example(
    factory: sessionmaker[Session], event_slug: str, batch: str | None, only: list[str] | None
) -> None:
    """Render the first invitation exactly as it would be queued, then roll it all back."""
    with factory() as db:
        db.begin()
        try:
            event = get_event(db, event_slug)
            rows = queue_invitations(db, event, batch=batch, only=only, limit=1)
            raw = rows[0].raw if rows and rows[0].raw else None
        finally:
            db.rollback()
    if raw is None:
        console.print("(nothing to render: nobody in the selection is waiting for an invitation)")
        return
    console.print(_readable(raw), markup=False, soft_wrap=True)


def _readable(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    lines = [f"{name}: {message[name]}" for name in ("From", "To", "Reply-To", "Subject")]
    lines.append("Parts: " + ", ".join(part.get_content_type() for part in message.walk()))
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else "(no text part)"
    return "\n".join([*lines, "", str(text).rstrip(), ""])


def _send_with_progress(factory: sessionmaker[Session], settings: ServiceSettings) -> SendReport:
    with factory() as db:
        due = count_due(db)
    if not due:
        console.print("nothing due to send")
        return SendReport()
    console.print(
        f"sending {plural(due, 'mail')} through {smtp_server(settings)}",
        soft_wrap=True,
        markup=False,
    )
    with _progress() as bar:
        task = bar.add_task("sending", total=due)
        try:
            report = send_due(factory, settings, progress=lambda _mail, _outcome: bar.advance(task))
        except SmtpConfigError as exc:
            raise UserError(str(exc)) from None
    _print_report(report)
    return report


def _print_report(report: SendReport) -> None:
    console.print(
        f"sent {report.sent}, to retry later {report.retried}, failed {report.failed}"
        + (f", not recorded {report.not_recorded}" if report.not_recorded else "")
        + f" in {report.seconds:.1f} s"
    )
    # The same error for many mails (a server that is down) is one line, with their ids.
    by_detail: dict[str, list[str]] = {}
    for error in report.errors:
        mail_id, _, detail = error.partition(": ")
        by_detail.setdefault(detail, []).append(mail_id)
    for detail, ids in list(by_detail.items())[:20]:
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        console.print(f"  {detail} (outbox id {shown})", markup=False, soft_wrap=True)
    if len(by_detail) > 20:
        more = plural(len(by_detail) - 20, "more error")
        console.print(f"  … and {more} (rsvpmail outbox list EVENT)")


def _exit_if_nothing_sent(report: SendReport, settings: ServiceSettings) -> None:
    """Exit 1 when mail was due and none of it went out, saying that nothing is lost."""
    if report.sent or not (report.retried or report.failed):
        return
    kept = (
        f"{report.retried} mail(s) stay queued (nothing is lost): `rsvpmail serve` or "
        "`rsvpmail outbox send` sends them, retrying with a growing delay, once the server "
        "takes them"
        if report.retried
        else ""
    )
    failed = (
        f"{report.failed} failed for good (rsvpmail outbox list EVENT --status failed)"
        if report.failed
        else ""
    )
    hint = ""
    if settings.source == DEFAULTS_SOURCE:
        hint = "; to use your mail server, give its settings: rsvpmail -c rsvpmail.toml …"
    err_console.print(
        f"error: nothing could be sent through {smtp_server(settings)}: "
        + "; ".join(part for part in (kept, failed) if part)
        + hint,
        soft_wrap=True,
        markup=False,
    )
    raise typer.Exit(NOTHING_SENT)


@outbox_app.command("send")
@friendly_errors
def outbox_send(
    ctx: typer.Context,
    config: Path | None = CONFIG_OPTION,
    once: bool = typer.Option(
        False, "--once", help="Send what is due now and stop (default: keep polling)"
    ),
    poll_seconds: float = typer.Option(30.0, "--poll-seconds", help="Wait between polls"),
) -> None:
    """Send the mail that is due, over one SMTP connection, within the rate limit.

    With --once the exit code is 1 when mail was due and none of it could be sent (it
    stays queued).
    """
    import time

    settings = settings_for(ctx, config)
    factory = app_context(ctx).sessions()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    console.print(f"sending through {smtp_server(settings)}", soft_wrap=True, markup=False)
    while True:
        try:
            report = send_due(factory, settings)
        except SmtpConfigError as exc:
            raise UserError(str(exc)) from None
        if report.handled or once:
            _print_report(report)
        if once:
            _exit_if_nothing_sent(report, settings)
            return
        time.sleep(poll_seconds)


@outbox_app.command("list")
@friendly_errors
def outbox_list(
    ctx: typer.Context,
    event_slug: str = typer.Argument(..., metavar="EVENT", help="The event's slug"),
    status: Annotated[
        OutboundStatus | None, typer.Option("--status", help="Only this status")
    ] = None,
    limit: int = typer.Option(200, "--limit", help="At most this many (newest first)"),
) -> None:
    """List an event's outgoing mail (newest first)."""
    factory = app_context(ctx).sessions()
    with factory() as db:
        event = get_event(db, event_slug)
        rows = outbox_rows(db, event, status, limit)
        zone = event_tz(event)
        table = Table("id", "kind", "recipient", "status", "attempts")
        table.add_column("next / sent", no_wrap=True)  # a time cut in two reads as two
        table.add_column("last error")
        for row in rows:
            when = row.sent_at if row.status == OutboundStatus.SENT else row.next_attempt_at
            table.add_row(
                str(row.id),
                row.kind,
                row.recipient,
                str(row.status),
                str(row.attempts),
                f"{when.astimezone(zone):%Y-%m-%d %H:%M}" if when else "",
                (row.last_error or "")[:80],
            )
    console.print(table)
    console.print(f"{len(rows)} shown; times in {zone.key}")


@outbox_app.command("retry")
@friendly_errors
def outbox_retry(
    ctx: typer.Context,
    outbound_id: int = typer.Argument(
        ..., metavar="ID", help="The outbox id (rsvpmail outbox list)"
    ),
) -> None:
    """Try a failed mail again (failed → pending, due now)."""
    factory = app_context(ctx).sessions()
    with transaction(factory) as db:
        row = retry_failed(db, outbound_id, actor="cli")
        recipient = row.recipient
    console.print(f"outbox message {outbound_id} to {recipient} is pending again")


def register(app: typer.Typer) -> None:
    app.command("invite", rich_help_panel="Mail")(invite)
    app.add_typer(outbox_app, name="outbox", rich_help_panel="Mail")
