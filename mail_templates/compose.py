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

Two outputs from one composition: `build_message()` gives an EmailMessage (tests, previews),
`build_message_bytes()` the bytes to store in the outbox. The latter writes the usual shapes
itself (mail_templates.fastmime) because the email package's header parsing and generator
took most of the time of queueing a big batch; it produces the very bytes the email package
would, and falls back to it for anything unusual.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from db.models import Event, Invitation, Participant, Person
from mail_templates import fastmime, headers
from mail_templates.calendar import CALENDAR_METHOD, build_calendar, has_calendar
from mail_templates.context import ORGANISER_KINDS, build_context, mail_language
from mail_templates.render import render_mail, render_partial
from workflows.clock import now
from workflows.event_config import EventConfig
from workflows.events import event_config
from workflows.outbox import MailKind

POLICY = headers.SMTP_POLICY
ICS_FILENAME = "invite.ics"


@dataclass(frozen=True)
class ComposedMail:
    """Everything that goes into one mail, before it becomes MIME."""

    lang: str
    token: str | None  # the invitation's token, where headers and parts carry it
    headers: tuple[tuple[str, str | Address], ...]  # top-level, in order
    text: str
    html: str
    ics: bytes | None  # the calendar item: an alternative part plus invite.ics
    attachments: tuple[tuple[str, str, bytes], ...]


class MailParts(TypedDict):
    """What a mail is about and where it goes: the keyword arguments of `compose()`."""

    event: Event
    person: Person | None
    recipient: str
    participant: Participant | None
    invitation: Invitation | None
    extra: dict[str, Any]
    message_id: str
    in_reply_to: tuple[str, ...]
    attachments: Sequence[tuple[str, str, bytes]]


def build_message(kind: MailKind, **parts: Unpack[MailParts]) -> EmailMessage:
    """Render mail `kind` for `recipient` as a complete message, ready to send."""
    return _to_email(compose(kind, **parts))


def build_message_bytes(kind: MailKind, **parts: Unpack[MailParts]) -> bytes:
    """`build_message(...).as_bytes()`, byte for byte, but quick (what the outbox stores)."""
    mail = compose(kind, **parts)
    if mail.attachments:
        return _to_email(mail).as_bytes()  # rare (forwarded questions): the general path
    return fastmime.serialize(
        mail.headers, mail.lang, mail.text, mail.html, mail.ics, token=mail.token
    )


def compose(kind: MailKind, **parts: Unpack[MailParts]) -> ComposedMail:
    """Render the parts and work out every header of mail `kind` for `recipient`."""
    kind = MailKind(kind)
    event, person, recipient = parts["event"], parts["person"], parts["recipient"]
    invitation, extra = parts["invitation"], parts["extra"]
    cfg = cached_event_config(event)
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
        participant=parts["participant"],
        invitation=invitation,
        extra=extra,
        reply_address=reply_to,
        has_calendar=calendar,
    )
    templates_dir = _templates_dir(cfg)
    rendered = render_mail(kind.value, lang, context, templates_dir)

    sender = headers.sender_mailbox(event.sender)
    stamp = now()
    top: list[tuple[str, str | Address]] = [
        ("From", sender),
        ("To", headers.mailbox(recipient_name, recipient, what=f"recipient of {kind.value}")),
        ("Reply-To", reply_to),
        ("Subject", _subject(rendered.subject, token)),
        ("Date", format_datetime(stamp)),
        ("Message-ID", parts["message_id"]),
    ]
    top.extend(_thread(parts["in_reply_to"]))
    replying = bool(parts["in_reply_to"])
    top.append(("Auto-Submitted", "auto-replied" if replying else "auto-generated"))
    top.append(("X-Auto-Response-Suppress", headers.AUTO_RESPONSE_SUPPRESS))
    # Lets mail rules (and the demo's simulated invitees) sort our mail without reading it.
    top.append(("X-Rsvpmail-Kind", kind.value))
    if for_invitee:
        top.extend(_unsubscribe(event.reply_address, token, cfg.unsubscribe_url))

    ics = None
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
            stamp=stamp,
        )
    return ComposedMail(
        lang=lang,
        token=token,
        headers=tuple(top),
        text=rendered.text,
        html=rendered.html,
        ics=ics,
        attachments=tuple(parts["attachments"]),
    )


def _to_email(mail: ComposedMail) -> EmailMessage:
    """The composed mail as an EmailMessage (the email package does the MIME)."""
    msg = EmailMessage(policy=POLICY)
    for name, value in mail.headers:
        msg[name] = value
    msg.set_content(mail.text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    if mail.ics is not None:
        _add_calendar(msg, mail.ics)
    for filename, mime_type, data in mail.attachments:
        _attach(msg, filename, mime_type, data)
    # Set last: building the MIME tree moves Content-* headers into the first subpart.
    msg["Content-Language"] = mail.lang
    return msg


# The validated config of an event, rebuilt from its stored JSON only when that changes:
# a batch of invitations would otherwise parse and validate it once per mail.
_config_cache: dict[tuple[str, int, str], EventConfig] = {}
_config_lock = threading.Lock()
_CONFIG_CACHE_SIZE = 64


def cached_event_config(event: Event) -> EventConfig:
    """`workflows.events.event_config(event)`, cached on what it is computed from."""
    key = (event.slug, event.capacity, repr(event.config))
    cfg = _config_cache.get(key)
    if cfg is None:
        cfg = event_config(event)
        with _config_lock:
            if len(_config_cache) >= _CONFIG_CACHE_SIZE:
                _config_cache.clear()
            _config_cache[key] = cfg
    return cfg


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


def _thread(in_reply_to: tuple[str, ...]) -> list[tuple[str, str | Address]]:
    parent, references = headers.thread_headers(in_reply_to)
    if parent and references:
        return [("In-Reply-To", parent), ("References", references)]
    return []


def _unsubscribe(
    reply_address: str, token: str | None, url: str
) -> list[tuple[str, str | Address]]:
    value, one_click = headers.list_unsubscribe(reply_address, token, url)
    found: list[tuple[str, str | Address]] = [("List-Unsubscribe", value)]
    if one_click:
        found.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return found


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
