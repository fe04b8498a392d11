"""`rsvpmail privacy …`: retention, a person's export, and forgetting a person (AVG/GDPR)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Event, Participant, ParticipantStatus
from jobs.commands.common import app_context, console, err_console
from jobs.commands.corrections import organiser_actor
from jobs.commands.registry import friendly_errors
from workflows.privacy import ForgetReport, export_person, forget_person, purge_expired

PS = ParticipantStatus
# What stays of an anonymised participant row, by its status.
_KEPT = {
    PS.REGISTERED: "the seat stays taken",
    PS.OFFERED: "holds the offered seat until the offer expires",
    PS.ATTENDED: "still counted as attended",
    PS.NO_SHOW: "still counted as not attended",
    PS.WAITLISTED: "stays on the waitlist",
}
_NO_SEAT = "holds no seat"
_PARTICIPANT_LINE = "participant rows kept anonymously"

privacy_app = typer.Typer(
    help="Personal data: apply retention, export what is held about someone, forget someone.",
    no_args_is_help=True,
)

OUTPUT_OPTION = typer.Option(
    None, "--output", "-o", help="Write the JSON to this file instead of printing it"
)


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy", rich_help_panel="Privacy")


@privacy_app.command("purge")
@friendly_errors
def purge(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be purged and change nothing"
    ),
) -> None:
    """Apply every event's retention now (the service also does this daily)."""
    factory = app_context(ctx).sessions()
    with factory() as db:
        transaction = db.begin()
        try:
            report = purge_expired(db)
        except BaseException:
            transaction.rollback()
            raise
        # A dry run does the real work and rolls it back, so it reports exactly what a
        # real run would do.
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    console.print("dry run: nothing was changed" if dry_run else "retention applied")
    for line in report.lines():
        console.print(f"  {line}")


@privacy_app.command("export")
@friendly_errors
def export(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL", help="The person's e-mail address"),
    output: Path | None = OUTPUT_OPTION,
    include_raw: bool = typer.Option(
        False, "--include-raw", help="Add the raw bytes of their messages (base64)"
    ),
) -> None:
    """Everything rsvpmail holds about a person, as JSON (right of access)."""
    factory = app_context(ctx).sessions()
    with factory() as db:
        data = export_person(db, email, include_raw=include_raw)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    err_console.print(f"written to {output}")


@privacy_app.command("forget")
@friendly_errors
def forget(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL", help="The person's e-mail address"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    by: str | None = typer.Option(
        None,
        "--by",
        help="Your name for the audit (who handled the request) \\[default: $USER]",
        show_default=False,
    ),
) -> None:
    """Erase a person's data now (right to erasure); cannot be undone.

    A registered seat stays taken: cancel first if they give it up (`answer … --as cancel`).

    Answering no at the question changes nothing and exits with code 1.
    """
    if not yes and not typer.confirm(
        f"Anonymise {email} everywhere now? This cannot be undone", default=False
    ):
        # A deliberate no is not an error (no "error:", not code 2), but the erasure did
        # not happen: exit 1, as typer does when the question is aborted, so that
        # `rsvpmail privacy forget X && record-erasure X` never records one that wasn't done.
        console.print("nothing changed")
        raise typer.Exit(1)
    actor = organiser_actor(by)
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        report = forget_person(db, email, actor=actor)
        lines = _forget_lines(db, report)
    for line in lines:
        console.print(line, markup=False)


def _forget_lines(db: Session, report: ForgetReport) -> list[str]:
    """The report, with what stays of each participant row said for its actual status
    (a cancelled person's row holds no seat, so "seats stay taken" would be wrong)."""
    rows = db.execute(
        select(Event.slug, Participant.status)
        .join(Event, Event.id == Participant.event_id)
        .where(Participant.person_id == report.person_id)
        .order_by(Event.slug, Participant.id)
    ).all()
    kept = [f"{_PARTICIPANT_LINE}: {len(rows)}"]
    kept += [f"  {slug}: {status.value}, {_KEPT.get(status, _NO_SEAT)}" for slug, status in rows]
    lines: list[str] = []
    for line in report.lines():
        lines.extend(kept if line.startswith(_PARTICIPANT_LINE) else [line])
    return lines
