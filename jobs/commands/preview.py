"""`rsvpmail preview`: see exactly what a kind of mail looks like for an event, sending nothing.

The mail is rendered by the same `build_message` the outbox uses, for a real invitee
(`--to`) or for a fictitious one. Nothing is written to the database: the sample objects are
never added to the session and the session is rolled back.
"""

from __future__ import annotations

import email.policy
from datetime import timedelta
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Event, Invitation, Participant, ParticipantStatus, Person
from jobs.commands.common import app_context, console
from jobs.commands.registry import UserError, friendly_errors
from mail_templates import build_message
from mail_templates.context import ORGANISER_KINDS
from workflows.clock import now
from workflows.errors import NotFound
from workflows.event_config import EventConfig
from workflows.events import event_config, get_event
from workflows.outbox import MailKind, message_id_for

SAMPLE_NAME = "Wethouder J. Voorbeeld"
SAMPLE_EMAIL = "j.voorbeeld@gemeente.example"
SAMPLE_ORGANISATION = "Gemeente Voorbeeld"
SAMPLE_TOKEN = "voorbeeldvoorbeeldvoorbeeld23456"  # a well-formed token that is never issued
SAMPLE_COLLEAGUE = "Wethouder K. Collega"

# What the participant is doing when each kind is sent; None: a plain invitee.
_STATUS_FOR_KIND = {
    MailKind.REGISTRATION_CONFIRMED: ParticipantStatus.REGISTERED,
    MailKind.COMPANION_CONFIRMED: ParticipantStatus.REGISTERED,
    MailKind.SUBSTITUTE_CONFIRMED: ParticipantStatus.REGISTERED,
    MailKind.WAITLISTED: ParticipantStatus.WAITLISTED,
    MailKind.SEAT_OFFERED: ParticipantStatus.OFFERED,
    MailKind.OFFER_EXPIRED: ParticipantStatus.EXPIRED,
    MailKind.DECLINED_ACK: ParticipantStatus.DECLINED,
    MailKind.CANCELLATION_CONFIRMED: ParticipantStatus.CANCELLED,
    MailKind.CHOOSE_SESSION: ParticipantStatus.REGISTERED,
    MailKind.SESSION_CONFIRMED: ParticipantStatus.REGISTERED,
    MailKind.REMINDER: ParticipantStatus.REGISTERED,
    MailKind.FOLLOWUP_ATTENDED: ParticipantStatus.ATTENDED,
    MailKind.FOLLOWUP_ABSENT: ParticipantStatus.NO_SHOW,
}
# Kinds whose sample participant has not chosen a session.
_WITHOUT_SESSION = {MailKind.INVITATION, MailKind.CHOOSE_SESSION, MailKind.NUDGE_UNANSWERED}


def register(app: typer.Typer) -> None:
    app.command("preview", rich_help_panel="Mail")(preview)


@friendly_errors
def preview(
    ctx: typer.Context,
    event: str = typer.Argument(..., metavar="EVENT", help="The event's slug"),
    kind: str = typer.Argument(
        ..., metavar="KIND", help="Kind of mail: " + ", ".join(k.value for k in MailKind)
    ),
    to: str | None = typer.Option(
        None,
        "--to",
        help="The e-mail address of someone invited to EVENT: render the mail as they would "
        "get it (their name, status, session and language). Leave it out to render for a "
        "sample person.",
        show_default=False,
    ),
    lang: str | None = typer.Option(
        None,
        "--lang",
        help="nl or en \\[default: the invitee's language, else the event's]",
        show_default=False,
    ),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the complete message to this .eml file instead"),
    ] = None,
) -> None:
    """Show a rendered mail, or write it as .eml; sends nothing and changes nothing.

    Shown are the headers and the text; HTML, calendar and attached parts are noted.
    """
    mail_kind = _parse_kind(kind)
    if lang is not None and lang not in ("nl", "en"):
        raise UserError(f"--lang must be nl or en, not {lang!r}")
    factory = app_context(ctx).sessions()
    with factory() as db:
        try:
            msg = render_preview(db, get_event(db, event), mail_kind, to=to, lang=lang)
        finally:
            db.rollback()  # belt and braces: a preview never writes
    if out is not None:
        out.write_bytes(msg.as_bytes())
        console.print(f"wrote {mail_kind.value} for {msg['To']} to {out}", markup=False)
        return
    typer.echo(describe(msg))


def _parse_kind(kind: str) -> MailKind:
    try:
        return MailKind(kind.strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in MailKind)
        raise UserError(f"unknown mail kind {kind!r}; choose one of: {known}") from None


def render_preview(
    db: Session, event: Event, kind: MailKind, *, to: str | None, lang: str | None
) -> EmailMessage:
    """The mail `kind` as `build_message` makes it, for `to` or the sample person."""
    cfg = event_config(event)
    if to:
        person, invitation, participant = _real_invitee(db, event, to)
        if lang and lang != person.language:
            person = _copy_with_language(person, lang)
    else:
        person = Person(
            email=SAMPLE_EMAIL,
            name=SAMPLE_NAME,
            organisation=SAMPLE_ORGANISATION,
            role="Wethouder",
            language=lang or event.language,
        )
        invitation = Invitation(token=SAMPLE_TOKEN)
        participant = _sample_participant(event, cfg, kind, person)
    organiser_mail = kind in ORGANISER_KINDS
    domain = event.reply_address.partition("@")[2] or "rsvpmail.invalid"
    return build_message(
        kind,
        event=event,
        person=None if organiser_mail else person,
        recipient=event.contact_email if organiser_mail else person.email,
        participant=None if kind == MailKind.ORGANISER_NOTICE else participant,
        invitation=invitation,
        extra=_sample_extra(kind, cfg, person),
        message_id=message_id_for(f"preview:{kind.value}:{person.email}", domain),
        in_reply_to=(),
        attachments=_sample_attachments(kind, person),
    )


def _real_invitee(
    db: Session, event: Event, address: str
) -> tuple[Person, Invitation | None, Participant | None]:
    person = db.scalar(select(Person).where(Person.email == address.strip().lower()))
    if person is None:
        raise NotFound(
            f"--to {address}: nobody with that e-mail address is invited to {event.slug}; "
            "--to takes an invitee of this event, or leave it out to render for a sample person"
        )
    invitation = db.scalar(
        select(Invitation).where(Invitation.event_id == event.id, Invitation.person_id == person.id)
    )
    participant = db.scalar(
        select(Participant).where(
            Participant.event_id == event.id, Participant.person_id == person.id
        )
    )
    if invitation is None and participant is None:
        raise NotFound(
            f"--to {address}: {person.email} is not invited to {event.slug}; --to takes an "
            "invitee of this event, or leave it out to render for a sample person"
        )
    return person, invitation, participant


def _copy_with_language(person: Person, lang: str) -> Person:
    """A detached copy, so choosing another language never touches the stored person."""
    return Person(
        email=person.email,
        name=person.name,
        organisation=person.organisation,
        role=person.role,
        language=lang,
    )


def _sample_participant(
    event: Event, cfg: EventConfig, kind: MailKind, person: Person
) -> Participant:
    status = _STATUS_FOR_KIND.get(kind, ParticipantStatus.INVITED)
    participant = Participant(status=status, person=person)
    if event.sessions and kind not in _WITHOUT_SESSION:
        participant.session = event.sessions[0]
    if status == ParticipantStatus.OFFERED:
        participant.offer_expires_at = now() + timedelta(hours=cfg.offer_expiry_hours)
    return participant


def _sample_extra(kind: MailKind, cfg: EventConfig, person: Person) -> dict[str, Any]:
    samples: dict[MailKind, dict[str, Any]] = {
        MailKind.WAITLISTED: {"position": 3},
        MailKind.SEAT_OFFERED: {"party_size": 2},
        MailKind.COMPANION_CONFIRMED: {"inviter_name": SAMPLE_COLLEAGUE},
        MailKind.SUBSTITUTE_CONFIRMED: {"replaces_name": SAMPLE_COLLEAGUE},
        MailKind.QUESTION_FORWARDED: {
            "question_text": "Is er parkeergelegenheid in de buurt?\nEn mag ik later aansluiten?",
            "from_name": person.name,
            "from_email": person.email,
        },
        MailKind.REMINDER: {"days_before": min(cfg.reminder_days_before, default=1)},
        MailKind.ORGANISER_NOTICE: {
            "subject": "Voorbeeldmelding",
            "lines": ["Dit is een voorbeeld van een melding aan de contactpersoon."],
        },
    }
    return samples.get(kind, {})


def _sample_attachments(kind: MailKind, person: Person) -> list[tuple[str, str, bytes]]:
    if kind != MailKind.QUESTION_FORWARDED:
        return []
    original = EmailMessage(policy=email.policy.SMTP)
    original["From"] = person.email
    original["Subject"] = "Vraag over de bijeenkomst"
    original.set_content("Is er parkeergelegenheid in de buurt?\nEn mag ik later aansluiten?\n")
    return [("original.eml", "message/rfc822", original.as_bytes())]


def describe(msg: EmailMessage) -> str:
    """Headers, the plain-text part, and one line per other part."""
    lines = [f"{name}: {value}" for name, value in msg.items()]
    text = msg.get_body(("plain",))
    lines.append("")
    lines.append(text.get_content().rstrip("\n") if isinstance(text, EmailMessage) else "")
    lines.append("")
    lines.extend(note for part in _leaf_parts(msg) if (note := _part_note(part, text)))
    return "\n".join(lines)


def _leaf_parts(part: Message) -> list[Message]:
    """The non-multipart parts; an attached message counts as one part, not its insides."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        return [part]
    children = part.get_payload()
    assert isinstance(children, list)
    return [leaf for child in children if isinstance(child, Message) for leaf in _leaf_parts(child)]


def _part_note(part: Message, text: Message | None) -> str | None:
    if part is text:
        return None
    ctype = part.get_content_type()
    payload = part.get_payload(decode=True) if not part.is_multipart() else None
    size = len(payload) if isinstance(payload, bytes) else len(part.as_bytes())
    filename = part.get_filename()
    if filename:
        return f"[attachment {filename}: {ctype}, {size} bytes]"
    if ctype == "text/calendar":
        return f"[calendar part: method={part.get_param('method')}, {size} bytes]"
    return f"[{ctype} part: {size} bytes]"
