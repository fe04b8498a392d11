"""Putting a mail together: headers, the rendered parts, the calendar item and attachments.

Structure (what Outlook and Gmail both understand, and what Google Calendar itself sends):

    multipart/mixed                      (only when there is something attached)
      multipart/alternative
        text/plain                       always: the readable fallback
        text/html                        CSS inlined
        text/calendar; method=REQUEST    invitations and confirmations
      application/ics  invite.ics        the same item, for clients that ignore the above
      message/rfc822   original.eml      a forwarded question's original

Pure: reads attributes of the objects passed in, asks the clock for the Date, nothing else.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Sequence
from email.message import EmailMessage, Message
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from db.models import Event, Invitation, Participant, Person
from mail_templates import headers
from mail_templates.calendar import CALENDAR_METHOD, build_calendar, has_calendar
from mail_templates.context import ORGANISER_KINDS, build_context, mail_language
from mail_templates.render import render_mail, render_partial
from workflows.clock import now
from workflows.event_config import EventConfig
from workflows.events import event_config
from workflows.outbox import MailKind

POLICY = headers.SMTP_POLICY
ICS_FILENAME = "invite.ics"


def build_message(
    kind: MailKind,
    *,
    event: Event,
    person: Person | None,
    recipient: str,
    participant: Participant | None,
    invitation: Invitation | None,
    extra: dict[str, Any],
    message_id: str,
    in_reply_to: tuple[str, ...],
    attachments: Sequence[tuple[str, str, bytes]],
) -> EmailMessage:
    """Render mail `kind` for `recipient` as a complete message, ready to send."""
    kind = MailKind(kind)
    cfg = event_config(event)
    lang = mail_language(kind, event, person)
    for_invitee = kind not in ORGANISER_KINDS
    token = invitation.token if invitation is not None and for_invitee else None
    recipient_name = _recipient_name(kind, event, person, recipient)
    reply_to = _reply_to(kind, event, token, extra)
    calendar = has_calendar(kind, token, extra)
    context = build_context(
        kind,
        lang=lang,
        cfg=cfg,
        person=person,
        recipient=recipient,
        recipient_name=recipient_name,
        participant=participant,
        invitation=invitation,
        extra=extra,
        reply_address=reply_to,
        has_calendar=calendar,
    )
    templates_dir = _templates_dir(cfg)
    rendered = render_mail(kind.value, lang, context, templates_dir)

    msg = EmailMessage(policy=POLICY)
    sender = headers.sender_mailbox(event.sender)
    msg["From"] = sender
    msg["To"] = headers.mailbox(recipient_name, recipient, what=f"recipient of {kind.value}")
    msg["Reply-To"] = reply_to
    msg["Subject"] = _subject(rendered.subject, token)
    msg["Date"] = format_datetime(now())
    msg["Message-ID"] = message_id
    _thread(msg, in_reply_to)
    msg["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
    msg["X-Auto-Response-Suppress"] = headers.AUTO_RESPONSE_SUPPRESS
    # Lets mail rules (and the demo's simulated invitees) sort our mail without reading it.
    msg["X-Rsvpmail-Kind"] = kind.value
    if for_invitee:
        _unsubscribe(msg, event.reply_address, token, cfg.unsubscribe_url)

    msg.set_content(rendered.text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    if calendar and token is not None:
        ics = build_calendar(
            kind,
            cfg=cfg,
            token=token,
            organiser_name=sender.display_name or cfg.organiser,
            organiser_address=reply_to,
            attendee_name=recipient_name,
            attendee_address=recipient,
            description=render_partial(f"{lang}/_calendar.txt.j2", context, templates_dir),
            stamp=now(),
        )
        _add_calendar(msg, ics)
    for filename, mime_type, data in attachments:
        _attach(msg, filename, mime_type, data)
    # Set last: building the MIME tree moves Content-* headers into the first subpart.
    msg["Content-Language"] = lang
    return msg


def _recipient_name(kind: MailKind, event: Event, person: Person | None, recipient: str) -> str:
    """The name on the To line and in the greeting, on one line whatever was stored."""
    name = ""
    if kind in ORGANISER_KINDS and recipient.lower() == event.contact_email.lower():
        name = event.contact_name
    elif person is not None and person.email.lower() == recipient.lower():
        name = person.name
    return headers.clean_header_text(name)


def _reply_to(kind: MailKind, event: Event, token: str | None, extra: dict[str, Any]) -> str:
    # A forwarded question is answered by the contact person straight to the one who asked.
    asker = str(extra.get("from_email") or "")
    if kind == MailKind.QUESTION_FORWARDED and "@" in asker:
        return headers.clean_header_text(asker, limit=320)
    return headers.reply_to_address(event.reply_address, token)


def _subject(subject: str, token: str | None) -> str:
    """The subject with the marker `[rsvp:<token>]` at the end, where quoting keeps it."""
    clean = headers.clean_header_text(subject, limit=headers.MAX_SUBJECT_CHARS)
    return f"{clean} [rsvp:{token}]" if token else clean


def _thread(msg: EmailMessage, in_reply_to: tuple[str, ...]) -> None:
    parent, references = headers.thread_headers(in_reply_to)
    if parent and references:
        msg["In-Reply-To"] = parent
        msg["References"] = references


def _unsubscribe(msg: EmailMessage, reply_address: str, token: str | None, url: str) -> None:
    value, one_click = headers.list_unsubscribe(reply_address, token, url)
    msg["List-Unsubscribe"] = value
    if one_click:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _templates_dir(cfg: EventConfig) -> Path | None:
    configured = cfg.extra.get("templates_dir")
    return Path(str(configured)).expanduser() if configured else None


def _add_calendar(msg: EmailMessage, ics: bytes) -> None:
    text = ics.decode("utf-8")
    msg.add_alternative(
        text, subtype="calendar", params={"method": CALENDAR_METHOD}, cte="quoted-printable"
    )
    msg.add_attachment(ics, maintype="application", subtype="ics", filename=ICS_FILENAME)


def _attach(msg: EmailMessage, filename: str, mime_type: str, data: bytes) -> None:
    name = headers.clean_header_text(filename) or "attachment"
    maintype, _, subtype = mime_type.lower().partition("/")
    if (maintype, subtype) == ("message", "rfc822"):
        original = _as_message(data)
        if original is not None:
            msg.add_attachment(original, disposition="attachment", filename=name)
            return
        maintype, subtype = "application", "octet-stream"  # unparseable: keep the bytes
    if not maintype or not subtype:
        maintype, subtype = "application", "octet-stream"
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)


def _as_message(data: bytes) -> Message | None:
    try:
        parsed = email.message_from_bytes(data, policy=email.policy.default)
    except Exception:  # any parser failure: attach the bytes unchanged instead
        return None
    return parsed if parsed.keys() else None
