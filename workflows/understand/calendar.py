"""iTIP replies (RFC 5546): the invitee pressed Accept / Decline / Tentative in a calendar.

Outlook sends METHOD:REPLY without ORGANIZER and with the comment in the body; Google sends
a COMMENT property. Both are read; the PARTSTAT decides the kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import Any

from icalendar import Calendar

from workflows.understand import mime

_CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar", "application/x-ics")
_MAX_ICS_CHARS = 500_000


@dataclass(frozen=True)
class CalendarReply:
    method: str  # REPLY, COUNTER, REQUEST, …
    partstat: str | None  # ACCEPTED, DECLINED, TENTATIVE, DELEGATED, NEEDS-ACTION
    attendee: str | None  # lowercased address
    uid: str | None
    comment: str = ""
    delegated_to: str | None = None


def find_calendar(msg: Message, sender: str | None) -> CalendarReply | None:
    """The first readable iCalendar part with a method, preferring the sender's own line."""
    for part, _depth, attached in mime.walk(msg):
        if attached or mime.content_type(part) not in _CALENDAR_TYPES:
            continue
        text = mime.part_text(part)
        if not text.strip() or len(text) > _MAX_ICS_CHARS:
            continue
        reply = _read_ics(text, sender)
        if reply is not None:
            return reply
    return None


def _read_ics(text: str, sender: str | None) -> CalendarReply | None:
    try:
        cal = Calendar.from_ical(text)
        method = str(cal.get("METHOD", "")).strip().upper()
        events = list(cal.walk("VEVENT"))
    except Exception:
        return None
    if not events:
        return None
    event = events[0]
    try:
        uid = str(event.get("UID", "")).strip() or None
        comment = "\n".join(str(c) for c in _as_list(event.get("COMMENT")))
        attendee, partstat, delegated = _attendee(event, sender)
    except Exception:
        return None
    return CalendarReply(method, partstat, attendee, uid, comment.strip(), delegated)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _attendee(event: Any, sender: str | None) -> tuple[str | None, str | None, str | None]:
    """(address, PARTSTAT, DELEGATED-TO) of the sender's ATTENDEE line, else the first one."""
    rows: list[tuple[str, str | None, str | None]] = []
    for att in _as_list(event.get("ATTENDEE")):
        addr = str(att).strip()
        if addr.lower().startswith("mailto:"):
            addr = addr[7:]
        params = getattr(att, "params", {}) or {}
        partstat = str(params.get("PARTSTAT", "")).upper() or None
        delegated = str(params.get("DELEGATED-TO", "")).strip() or None
        if delegated and delegated.lower().startswith("mailto:"):
            delegated = delegated[7:]
        rows.append((addr.lower(), partstat, delegated.lower() if delegated else None))
    if not rows:
        return None, None, None
    for row in rows:
        if sender and row[0] == sender.lower():
            return row
    with_status = [r for r in rows if r[1]]
    return (with_status or rows)[0]
