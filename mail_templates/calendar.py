"""The iCalendar (RFC 5545/5546) part of invitations and confirmations.

One calendar item per invitation: its UID is `<token>@rsvpmail`, so the confirmation updates
the item the invitation created instead of adding a second one.

- Invitation: METHOD:REQUEST, SEQUENCE 0. ORGANIZER is the invitation's own reply address
  (`aanmelden+<token>@…`), so when the invitee presses "Accept" in Outlook or Gmail the
  METHOD:REPLY comes back to an address that names the invitation. The ATTENDEE (the invitee)
  has RSVP=TRUE and PARTSTAT=NEEDS-ACTION, which is what makes clients show the buttons.
- Confirmations: METHOD:REQUEST again, same UID, SEQUENCE 1, the attendee ACCEPTED and
  RSVP=FALSE. A REQUEST with a higher SEQUENCE is what Outlook and Google Calendar treat as
  an update of the existing item; METHOD:PUBLISH would make Outlook create a separate,
  unlinked item and Gmail offer an "import" instead of updating. Should a client still send
  an Accept, it is an accept from someone already registered: harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vText
from icalendar.parser import Contentline

from mail_templates.headers import clean_header_text
from workflows.event_config import EventConfig
from workflows.outbox import MailKind
from workflows.tokens import calendar_uid

# Kinds that carry the calendar item, and the SEQUENCE each gives it.
CALENDAR_SEQUENCE = {
    MailKind.INVITATION: 0,
    MailKind.REGISTRATION_CONFIRMED: 1,
    MailKind.COMPANION_CONFIRMED: 1,
    MailKind.SUBSTITUTE_CONFIRMED: 1,
}
PRODID = "-//rsvpmail//rsvpmail//NL"
CALENDAR_METHOD = "REQUEST"


def has_calendar(kind: MailKind, token: str | None, extra: Mapping[str, Any]) -> bool:
    """Whether the mail carries the invitation's calendar item.

    Only a mail about an invitation (with its token) can; and a substitute who lands on the
    waiting list gets no "accepted" appointment for a seat they do not have.
    """
    if kind not in CALENDAR_SEQUENCE or token is None:
        return False
    return not (kind == MailKind.SUBSTITUTE_CONFIRMED and extra.get("waitlisted"))


def build_calendar(
    kind: MailKind,
    *,
    cfg: EventConfig,
    token: str,
    organiser_name: str,
    organiser_address: str,
    attendee_name: str,
    attendee_address: str,
    description: str,
    stamp: datetime,
) -> bytes:
    """The VCALENDAR for `kind` (which must be in CALENDAR_SEQUENCE), as iCalendar bytes.

    Only the VEVENT is built per mail; what comes before and after it (the calendar's own
    properties and the VTIMEZONE) is the same for every mail of the event and cached.
    """
    sequence = CALENDAR_SEQUENCE[kind]
    item = Event()
    item.add("uid", calendar_uid(token))
    item.add("sequence", sequence)
    item.add("dtstamp", stamp)
    item.add("dtstart", cfg.starts_at.astimezone(cfg.tz))
    item.add("dtend", cfg.ends_at.astimezone(cfg.tz))
    item.add("summary", cfg.title)
    item.add("location", ", ".join(p for p in (cfg.venue, cfg.address) if p))
    item.add("description", description)
    item.add("status", "CONFIRMED")
    item.add("transp", "OPAQUE")
    item.add("organizer", _address(organiser_address, organiser_name))
    attendee = _address(attendee_address, attendee_name)
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    if sequence == 0:
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
    else:
        attendee.params["PARTSTAT"] = "ACCEPTED"
        attendee.params["RSVP"] = "FALSE"
    item.add("attendee", attendee)
    before, after = _calendar_frame(cfg.timezone, cfg.starts_at, cfg.ends_at)
    # A component's lines do not depend on what contains it, so the item's own bytes slot in
    # where Calendar.to_ical() would have written them.
    return before + _component_ical(item, token) + after


def _component_ical(component: Event, token: str) -> bytes:
    """`component.to_ical()`, folding each content line the quick way where it can.

    Folding (icalendar's, at 75 octets) walks every character and was most of the cost of
    a calendar item. Where it breaks a line depends only on the octet length of each
    character (and on backslashes and carets), so it is computed once per line and reused:
    for lines with the token in them, once per line with the token's letters and digits
    standing in for any token of that length.
    """
    lines = component.content_lines(sorted=True)
    return b"\r\n".join(_folded(str(line), token) for line in lines if line) + b"\r\n"


def _folded(line: str, token: str) -> bytes:
    pattern = line
    if token and token in line and token.isascii() and token.isalnum():
        pattern = line.replace(token, "a" * len(token))
    breaks = _breaks(pattern)
    pieces = [
        line[start:end] for start, end in zip((0, *breaks), (*breaks, len(line)), strict=True)
    ]
    return "\r\n ".join(pieces).encode("utf-8")


@lru_cache(maxsize=4096)
def _breaks(line: str) -> tuple[int, ...]:
    """Where icalendar's folding breaks `line` (character offsets in the unfolded line)."""
    folded: bytes = Contentline(line).to_ical()  # type: ignore[no-untyped-call]
    pieces = folded.decode("utf-8").split("\r\n ")
    offsets, at = [], 0
    for piece in pieces[:-1]:
        at += len(piece)
        offsets.append(at)
    return tuple(offsets)


@lru_cache(maxsize=32)
def _calendar_frame(timezone: str, starts_at: datetime, ends_at: datetime) -> tuple[bytes, bytes]:
    """The calendar's bytes before and after its VEVENT, for an event at these times."""
    tz = ZoneInfo(timezone)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", CALENDAR_METHOD)
    cal.add("calscale", "GREGORIAN")
    placeholder = Event()
    placeholder.add("dtstart", starts_at.astimezone(tz))
    placeholder.add("dtend", ends_at.astimezone(tz))
    cal.add_component(placeholder)
    # A VTIMEZONE spanning the event (with a year's margin), so clients that do not know the
    # zone's name still place 13:00 Amsterdam time correctly.
    cal.add_missing_timezones(
        first_date=(starts_at - timedelta(days=366)).date(),
        last_date=(ends_at + timedelta(days=366)).date(),
    )
    whole = bytes(cal.to_ical())
    own = bytes(placeholder.to_ical())
    start = whole.index(own)
    return whole[:start], whole[start + len(own) :]


def _address(address: str, name: str) -> vCalAddress:
    value = vCalAddress(f"mailto:{address}")
    clean = clean_header_text(name)
    if clean:
        value.params["CN"] = vText(clean)
    return value
