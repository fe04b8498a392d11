"""How simulated invitees write back: the mail clients and habits of real people.

Each builder takes the message being answered and returns the bytes of a reply as the named
client would produce it (quoting style, signature, headers). The demo's simulator uses them;
tests use them to feed the reader realistic traffic.
"""

from __future__ import annotations

import email
import email.policy
import textwrap
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr

from icalendar import Calendar, Event, vCalAddress, vText

DUTCH_DAYS = ["ma", "di", "wo", "do", "vr", "za", "zo"]
DUTCH_MONTHS = [
    "jan.",
    "feb.",
    "mrt.",
    "apr.",
    "mei",
    "jun.",
    "jul.",
    "aug.",
    "sep.",
    "okt.",
    "nov.",
    "dec.",
]


def original_text(message: Message) -> str:
    """The plain-text part of the message being answered (what clients quote)."""
    if message.is_multipart():
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    return payload.decode(part.get_content_charset() or "utf-8", "replace")
        return ""
    payload = message.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def reply_address(message: Message) -> str:
    """Where a client sends its answer: Reply-To when present, else From."""
    value = message.get("Reply-To") or message.get("From") or ""
    addresses = [addr for _name, addr in getaddresses([str(value)]) if addr]
    return addresses[0] if addresses else ""


def _base(
    message: Message,
    sender: tuple[str, str],
    when: datetime,
    body: str,
    *,
    subject_prefix: str = "Re: ",
    x_mailer: str | None = None,
) -> EmailMessage:
    reply = EmailMessage(policy=email.policy.SMTP)
    name, address = sender
    reply["From"] = f"{name} <{address}>"
    reply["To"] = reply_address(message)
    subject = str(message.get("Subject", ""))
    reply["Subject"] = (
        subject if subject.lower().startswith(("re:", "antw:")) else subject_prefix + subject
    )
    reply["Date"] = format_datetime(when)
    reply["Message-ID"] = make_msgid(domain=address.partition("@")[2] or "sim.example")
    original_id = message.get("Message-ID")
    if original_id:
        reply["In-Reply-To"] = original_id
        reply["References"] = " ".join(
            filter(None, [str(message.get("References", "")), str(original_id)])
        ).strip()
    if x_mailer:
        reply["X-Mailer"] = x_mailer
    reply.set_content(body)
    return reply


def _sender_name(message: Message) -> str:
    name, address = parseaddr(str(message.get("From", "")))
    return name or address


def _quoted(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def gmail(message: Message, sender: tuple[str, str], when: datetime, text: str) -> bytes:
    sent = _message_date(message, when)
    header = (
        f"Op {DUTCH_DAYS[sent.weekday()]} {sent.day} {DUTCH_MONTHS[sent.month - 1]} {sent.year} "
        f"om {sent:%H:%M} schreef {_sender_name(message)} <{parseaddr(str(message['From']))[1]}>:"
    )
    body = f"{text}\n\n{header}\n\n{_quoted(original_text(message))}\n"
    return _base(message, sender, when, body).as_bytes()


def outlook(
    message: Message, sender: tuple[str, str], when: datetime, text: str, *, signature: str = ""
) -> bytes:
    sent = _message_date(message, when)
    block = (
        "-----Oorspronkelijk bericht-----\n"
        f"Van: {message.get('From', '')}\n"
        f"Verzonden: {DUTCH_DAYS[sent.weekday()]} {sent.day} {DUTCH_MONTHS[sent.month - 1]} "
        f"{sent.year} {sent:%H:%M}\n"
        f"Aan: {message.get('To', '')}\n"
        f"Onderwerp: {message.get('Subject', '')}\n"
    )
    body = f"{text}\n\n{signature}\n\n{block}\n{original_text(message)}\n"
    reply = _base(
        message, sender, when, body, subject_prefix="RE: ", x_mailer="Microsoft Outlook 16.0"
    )
    reply["Thread-Topic"] = str(message.get("Subject", ""))
    return reply.as_bytes()


def apple(message: Message, sender: tuple[str, str], when: datetime, text: str) -> bytes:
    sent = _message_date(message, when)
    header = (
        f"Op {sent.day} {DUTCH_MONTHS[sent.month - 1]} {sent.year} om {sent:%H:%M} heeft "
        f"{_sender_name(message)} <{parseaddr(str(message['From']))[1]}> het volgende geschreven:"
    )
    body = (
        f"{text}\n\nVerstuurd vanaf mijn iPhone\n\n{header}\n\n{_quoted(original_text(message))}\n"
    )
    return _base(message, sender, when, body, x_mailer="iPhone Mail (20C65)").as_bytes()


def english(message: Message, sender: tuple[str, str], when: datetime, text: str) -> bytes:
    sent = _message_date(message, when)
    header = f"On {sent:%a, %d %b %Y at %H:%M}, {_sender_name(message)} wrote:"
    body = f"{text}\n\n{header}\n{_quoted(original_text(message))}\n"
    return _base(message, sender, when, body).as_bytes()


def calendar_reply(
    message: Message,
    sender: tuple[str, str],
    when: datetime,
    partstat: str = "ACCEPTED",
    comment: str = "",
) -> bytes:
    """What Outlook sends when the invitee clicks Accept: METHOD:REPLY, no ORGANIZER."""
    uid = _invitation_uid(message)
    cal = Calendar()
    cal.add("prodid", "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN")
    cal.add("version", "2.0")
    cal.add("method", "REPLY")
    vevent = Event()
    vevent.add("uid", uid)
    vevent.add("dtstamp", when)
    attendee = vCalAddress(f"mailto:{sender[1]}")
    attendee.params["CN"] = vText(sender[0])
    attendee.params["PARTSTAT"] = vText(partstat)
    vevent.add("attendee", attendee)
    if comment:
        vevent.add("comment", comment)
    cal.add_component(vevent)
    verb = {"ACCEPTED": "Geaccepteerd", "DECLINED": "Afgewezen", "TENTATIVE": "Voorlopig"}[partstat]
    reply = _base(
        message,
        sender,
        when,
        f"{verb}: {message.get('Subject', '')}\n",
        x_mailer="Microsoft Outlook 16.0",
    )
    del reply["Subject"]
    reply["Subject"] = f"{verb}: {message.get('Subject', '')}"
    reply.add_alternative(
        cal.to_ical(), maintype="text", subtype="calendar", params={"method": "REPLY"}
    )
    return reply.as_bytes()


def out_of_office(message: Message, sender: tuple[str, str], when: datetime, until: str) -> bytes:
    """An Exchange automatic reply, with the headers that mark it as automatic."""
    body = textwrap.dedent(f"""\
        Geachte heer/mevrouw,

        Ik ben afwezig tot en met {until} en heb beperkt toegang tot mijn e-mail.
        Voor dringende zaken kunt u contact opnemen met het secretariaat van het college.

        Met vriendelijke groet,
        {sender[0]}
        """)
    reply = _base(message, sender, when, body, x_mailer="Microsoft Exchange Server")
    del reply["Subject"]
    reply["Subject"] = f"Automatisch antwoord: {message.get('Subject', '')}"
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Auto-Response-Suppress"] = "All"
    reply["X-MS-Exchange-Inbox-Rules-Loop"] = sender[1]
    return reply.as_bytes()


def delivery_failure(message: Message, failed: str, reporter: str, when: datetime) -> bytes:
    """A Dutch Exchange non-delivery report (RFC 3464 DSN) for `failed`, as Exchange writes it."""
    boundary = "=_rsvpmail_sim_dsn"
    to = reply_address(message) or str(message.get("From", ""))
    headers = "".join(f"{k}: {v}\r\n" for k, v in message.items())
    text = (
        f"From: Microsoft Outlook <postmaster@{reporter}>\r\n"
        f"To: {to}\r\n"
        f"Subject: Onbestelbaar: {message.get('Subject', '')}\r\n"
        f"Date: {format_datetime(when)}\r\n"
        f"Message-ID: {make_msgid(domain=reporter)}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Uw bericht kan niet worden bezorgd bij de volgende ontvangers:\r\n\r\n"
        f"{failed}\r\n"
        "Het e-mailadres dat u hebt ingevoerd, kan niet worden gevonden.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; {reporter}\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 RESOLVER.ADR.RecipNotFound; not found\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}\r\n"
        f"--{boundary}--\r\n"
    )
    return text.encode("utf-8")


def _message_date(message: Message, fallback: datetime) -> datetime:
    value = message.get("Date")
    if value:
        try:
            return email.utils.parsedate_to_datetime(str(value)).astimezone(fallback.tzinfo)
        except (TypeError, ValueError):
            pass
    return fallback


def _invitation_uid(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                cal = Calendar.from_ical(payload)
                for component in cal.walk("VEVENT"):
                    return str(component.get("uid"))
    return ""
