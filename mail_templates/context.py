"""What a template sees: plain values prepared from the objects a mail is about.

Templates get ready-formatted text (dates in the reader's language and the event's time zone)
rather than model objects, so an organiser's override template cannot reach the database
through a relationship and every template says "woensdag 1 februari 2023" the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, object_session

from db.models import Event, Invitation, Participant, ParticipantStatus, Person
from workflows import seats
from workflows.clock import now
from workflows.event_config import EventConfig
from workflows.outbox import MailKind
from workflows.tokens import text_marker

LANGUAGES = ("nl", "en")
BABEL_LOCALES = {"nl": "nl_NL", "en": "en_GB"}

# Mail to the event's contact person rather than to an invitee: written in the event's
# language, carries no invitation token and no unsubscribe link.
ORGANISER_KINDS = frozenset({MailKind.QUESTION_FORWARDED, MailKind.ORGANISER_NOTICE})

# The `extra` keys each kind reads, with the value used when the caller left one out, so a
# template can always test `extra.position` (StrictUndefined in tests would flag a typo).
KIND_EXTRAS: Mapping[MailKind, Mapping[str, Any]] = {
    MailKind.COMPANION_CONFIRMED: {"inviter_name": ""},
    MailKind.SUBSTITUTE_CONFIRMED: {"replaces_name": "", "waitlisted": False, "position": None},
    MailKind.WAITLISTED: {"position": None, "late": False},
    MailKind.SEAT_OFFERED: {"party_size": 1, "expires_at": None},
    MailKind.OFFER_EXPIRED: {"party_size": 1},
    # declined_offer: the reader declined a seat offered to them from the waitlist.
    MailKind.DECLINED_ACK: {"substitute_name": "", "declined_offer": False},
    MailKind.CANCELLATION_CONFIRMED: {"party_size": 1, "inviter_name": ""},
    # position: the reader's place on the waitlist when they wait (None: looked up, see
    # _waitlist_position).
    # inviter_name: set when the reader moved along with the colleague who brought them.
    MailKind.SESSION_CONFIRMED: {
        "session_key": "",
        "session_title": "",
        "position": None,
        "inviter_name": "",
    },
    # None: looked up (see _room): free seats now, and people on the waitlist.
    MailKind.TENTATIVE_ACK: {"seats_free": None, "waiting": None},
    MailKind.QUESTION_FORWARDED: {"question_text": "", "from_name": "", "from_email": ""},
    MailKind.UNSUBSCRIBE_ACK: {"organiser": ""},
    MailKind.REMINDER: {"days_before": None},
    MailKind.ORGANISER_NOTICE: {"notice": "", "subject": "", "lines": []},
    # None: the registered companions of the participant, looked up (see _companions).
    MailKind.REGISTRATION_CONFIRMED: {"companions": None},
}

# Organiser notices: the rules pass `notice` (which one) and its facts; the template
# (<lang>/_notices.txt.j2) writes subject and lines in the event's language. The facts each
# notice reads, with defaults so a caller that leaves one out still gets a sensible mail.
# Datetimes are formatted like every other date (format_moment). A notice without `notice`
# shows the caller's own `subject` and `lines` as given (previews, one-off messages).
NOTICE_FACTS: Mapping[str, Mapping[str, Any]] = {
    # inbound: a permanent bounce of mail to someone on the event's list. `reason`: what the
    # receiving server said (one line), "" when the bounce did not say; `role`: "invitee"
    # (from the invitee list), "companion" or "substitute" (named by `inviter` in a reply);
    # `status`: their participant status ("" when unknown).
    "undeliverable": {
        "name": "",
        "email": "",
        "reason": "",
        "role": "invitee",
        "inviter": "",
        "status": "",
    },
    # registration: a "ja" after the deadline, put on the waitlist (late policy "waitlist")
    "late_acceptance": {
        "name": "",
        "email": "",
        "party_size": 1,
        "position": None,
        "seats_free": 0,
    },
    # registration: a waiting party was offered seats but its head has no e-mail address
    "offer_unreachable": {"name": "", "party_size": 1, "expires_at": None},
    # registration: seats freed when no automatic offers are made (after the deadline, or
    # within `no_offers_within_hours` of the start: after_deadline False)
    "seats_freed": {
        "name": "",
        "email": "",
        "count": 1,
        "status": "",
        "seats_free": 0,
        "waiting": 0,
        "after_deadline": True,
    },
    # timeline: the summary at the registration deadline
    "registration_closed": {
        "registered": 0,
        "companions": 0,
        "waitlisted": 0,
        "offered": 0,
        "declined": 0,
        "cancelled": 0,
        "expired": 0,
        "no_answer": 0,
        "capacity": 0,
        "seats_free": 0,
    },
    # outbox: the daily cap on automatic answers to one address was reached
    "loop_brake": {"sender": "", "cap": 0},
}

_FREE_PRICES = {"", "gratis", "kosteloos", "free", "free of charge", "0", "€0", "€ 0"}


def mail_language(kind: MailKind, event: Event, person: Person | None) -> str:
    """The reader's language: the invitee's own, or the event's for organiser mail."""
    if kind in ORGANISER_KINDS or person is None:
        return event.language if event.language in LANGUAGES else "nl"
    return person.language if person.language in LANGUAGES else "nl"


def format_moment(moment: datetime, tz: ZoneInfo, lang: str) -> str:
    """'woensdag 1 februari 2023, 13:00' / 'Wednesday 1 February 2023, 13:00'."""
    local = moment.astimezone(tz)
    return format_datetime(local, "EEEE d MMMM y, HH:mm", locale=BABEL_LOCALES[lang])


def format_day(moment: datetime, tz: ZoneInfo, lang: str) -> str:
    """'woensdag 1 februari 2023' / 'Wednesday 1 February 2023'."""
    return format_date(moment.astimezone(tz), "EEEE d MMMM y", locale=BABEL_LOCALES[lang])


def _is_end_of_day(moment: datetime, tz: ZoneInfo) -> bool:
    local = moment.astimezone(tz)
    return (local.hour, local.minute) >= (23, 59)


def format_deadline(moment: datetime, tz: ZoneInfo, lang: str) -> str:
    """A deadline at the end of a day is just that day; otherwise day and time."""
    local = moment.astimezone(tz)
    if _is_end_of_day(local, tz):
        return format_day(local, tz, lang)
    return format_moment(local, tz, lang) + (" uur" if lang == "nl" else "")


def format_short_day(moment: datetime, tz: ZoneInfo, lang: str) -> str:
    """'1 februari 2023' / '1 February 2023'."""
    return format_date(moment.astimezone(tz), "d MMMM y", locale=BABEL_LOCALES[lang])


def build_context(
    kind: MailKind,
    *,
    lang: str,
    cfg: EventConfig,
    person: Person | None,
    recipient: str,
    recipient_name: str,
    participant: Participant | None,
    invitation: Invitation | None,
    extra: Mapping[str, Any],
    reply_address: str,
    has_calendar: bool,
) -> dict[str, Any]:
    """All variables a template may use (documented in mail_templates/README.md)."""
    token = invitation.token if invitation is not None and kind not in ORGANISER_KINDS else None
    return {
        "kind": kind.value,
        "lang": lang,
        "event": _event_values(cfg, lang),
        "person": _person_values(person),
        "recipient": recipient,
        "recipient_name": recipient_name,
        "participant": _participant_values(participant, cfg, lang, extra),
        "token": token,
        "marker": text_marker(token) if token else None,
        "reply_address": reply_address,
        "has_calendar": has_calendar,
        # Whether an answer now is still in time (templates must not ask for one by a
        # deadline that has passed).
        "registration_open": now() <= cfg.registration_deadline,
        "for_invitee": kind not in ORGANISER_KINDS,
        "extra": _extras(kind, extra, participant, cfg, lang),
    }


def _extras(
    kind: MailKind,
    extra: Mapping[str, Any],
    participant: Participant | None,
    cfg: EventConfig,
    lang: str,
) -> dict[str, Any]:
    """The caller's extras over the kind's defaults, with list/text shapes made dependable."""
    values = {**KIND_EXTRAS.get(kind, {}), **extra}
    if kind is MailKind.ORGANISER_NOTICE:
        values = _notice_facts(values, cfg, lang)
    if "companions" in values and kind is MailKind.REGISTRATION_CONFIRMED:
        values["companions"] = _companions(values["companions"], participant)
    if kind is MailKind.SESSION_CONFIRMED and values.get("position") is None:
        values["position"] = _waitlist_position(participant)
    if kind is MailKind.TENTATIVE_ACK and (
        values["seats_free"] is None or values["waiting"] is None
    ):
        seats_free, waiting = _room(participant)
        if values["seats_free"] is None:
            values["seats_free"] = seats_free
        if values["waiting"] is None:
            values["waiting"] = waiting
    lines = values.get("lines")
    if isinstance(lines, str):
        values["lines"] = [lines]
    elif lines is not None and not isinstance(lines, list):
        values["lines"] = [str(line) for line in lines]
    for key in ("question_text", "from_name", "from_email", "subject"):
        if key in values and values[key] is None:
            values[key] = ""
    return values


def _notice_facts(values: dict[str, Any], cfg: EventConfig, lang: str) -> dict[str, Any]:
    """An organiser notice's facts over its defaults; dates formatted, texts on one line
    (a notice line is one line, whatever a bounce or a name brought along)."""
    notice = str(values.get("notice") or "")
    values = {**NOTICE_FACTS.get(notice, {}), **values, "notice": notice}
    for key, value in values.items():
        if isinstance(value, datetime):
            values[key] = format_moment(value, cfg.tz, lang)
        elif isinstance(value, str) and key != "notice":
            values[key] = " ".join(value.split())
    return values


def _companions(given: Any, participant: Participant | None) -> list[dict[str, Any]]:
    """The colleagues registered along with `participant`: [{name, email, has_email}].

    Callers may pass them (names, or dicts with those keys); otherwise they are the
    participant's registered companions, read through the participant's own database
    session — the one query a template's context makes, and only for this kind.
    """
    if given is not None:
        return [
            {"name": c, "email": "", "has_email": True}
            if isinstance(c, str)
            else {"name": "", "email": "", "has_email": True, **c}
            for c in given
        ]
    db = object_session(participant) if participant is not None else None
    if db is None or participant is None or participant.id is None:
        return []
    rows = db.scalars(
        select(Participant)
        .options(joinedload(Participant.person))
        .where(
            Participant.companion_of_id == participant.id,
            Participant.status == ParticipantStatus.REGISTERED,
        )
        .order_by(Participant.id)
    )
    companions = []
    for row in rows:
        who = row.person
        # Placeholder people (named without an address) have an address under .invalid.
        has_email = who is not None and not who.email.endswith(".invalid")
        companions.append(
            {
                "name": (who.name if who is not None else "") or "",
                "email": who.email if has_email else "",
                "has_email": has_email,
            }
        )
    return companions


def _waitlist_position(participant: Participant | None) -> int | None:
    """The waiting participant's place on the waitlist (as `seats.waitlist_position`), read
    through the participant's own database session; None when not waiting or not stored."""
    db = object_session(participant) if participant is not None else None
    if (
        db is None
        or participant is None
        or participant.status is not ParticipantStatus.WAITLISTED
        or participant.waitlist_seq is None
    ):
        return None
    return seats.waitlist_position(db, participant)


def _room(participant: Participant | None) -> tuple[int | None, int | None]:
    """(free seats, people waiting) in the participant's event right now, read through the
    participant's own database session; (None, None) when it is not in one (a preview)."""
    db = object_session(participant) if participant is not None else None
    if db is None or participant is None or participant.event_id is None:
        return None, None
    event = participant.event
    waiting = db.scalar(
        select(func.count(Participant.id)).where(
            Participant.event_id == event.id, Participant.status == ParticipantStatus.WAITLISTED
        )
    )
    return seats.seats_left(db, event), int(waiting or 0)


# What templates see of an event, per config object and language: the same for every mail
# of a batch, and formatting its dates in the reader's language is most of the work. Keyed
# on the config object itself (compose.cached_event_config hands out one per version of an
# event's settings), which the entry keeps alive so its id cannot be reused.
_event_values_cache: dict[tuple[int, str], tuple[EventConfig, dict[str, Any]]] = {}
_event_values_lock = threading.Lock()
_EVENT_VALUES_CACHE_SIZE = 64


def _event_values(cfg: EventConfig, lang: str) -> dict[str, Any]:
    """`_format_event(cfg, lang)`, computed once per config and language.

    Each mail gets its own copy: an organiser's template may change what it is given (the
    sandbox allows `list.append`), and that must not reach the next mail.
    """
    key = (id(cfg), lang)
    held = _event_values_cache.get(key)
    if held is None or held[0] is not cfg:
        held = (cfg, _format_event(cfg, lang))
        with _event_values_lock:
            if len(_event_values_cache) >= _EVENT_VALUES_CACHE_SIZE:
                _event_values_cache.clear()
            _event_values_cache[key] = held
    return {
        name: [dict(item) for item in value] if isinstance(value, list) else value
        for name, value in held[1].items()
    }


def _format_event(cfg: EventConfig, lang: str) -> dict[str, Any]:
    tz = cfg.tz
    description = cfg.description.strip()
    if lang != cfg.language:
        # The description is written in the event's language; an English reader gets the
        # translation when the organiser provided one (extra.description_en), else none.
        description = str(cfg.extra.get(f"description_{lang}", "")).strip()
    return {
        "title": cfg.title,
        "organiser": cfg.organiser,
        "description": description,
        "date": format_day(cfg.starts_at, tz, lang),
        "short_date": format_short_day(cfg.starts_at, tz, lang),
        "starts": format_moment(cfg.starts_at, tz, lang),
        "start_time": cfg.starts_at.astimezone(tz).strftime("%H:%M"),
        "end_time": cfg.ends_at.astimezone(tz).strftime("%H:%M"),
        "venue": cfg.venue,
        "address": cfg.address,
        "price": cfg.price,
        "free": cfg.price.strip().lower() in _FREE_PRICES,
        "companions_welcome": cfg.companions_welcome and cfg.max_companions > 0,
        "max_companions": cfg.max_companions,
        "deadline": format_deadline(cfg.registration_deadline, tz, lang),
        # True when `deadline` is a whole day (23:59): "tot en met" it rather than "tot" it.
        "deadline_is_day": _is_end_of_day(cfg.registration_deadline, tz),
        "deadline_date": format_day(cfg.registration_deadline, tz, lang),
        "contact_name": cfg.contact_name,
        "contact_email": cfg.contact_email,
        "contact_phone": cfg.contact_phone,
        "offer_expiry_hours": cfg.offer_expiry_hours,
        "programme": [{"time": p.time, "item": p.item} for p in cfg.programme],
        "sessions": [
            {"key": s.key, "title": s.title, "description": s.description} for s in cfg.sessions
        ],
        "survey_url": cfg.survey_url,
        "materials": [{"title": m.title, "url": m.url} for m in cfg.materials],
    }


def _person_values(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {
        "name": person.name,
        "email": person.email,
        "organisation": person.organisation,
        "role": person.role,
    }


def _participant_values(
    participant: Participant | None, cfg: EventConfig, lang: str, extra: Mapping[str, Any]
) -> dict[str, Any] | None:
    if participant is None:
        return None
    session = participant.session
    inviter = participant.companion_of
    # The row's deadline is the truth; a caller that passes `expires_at` (seat_offered) covers
    # an offer whose row is not flushed yet.
    expires = participant.offer_expires_at or extra.get("expires_at")
    who = participant.person
    return {
        "name": who.name if who is not None else "",
        "email": who.email if who is not None else "",
        "organisation": who.organisation if who is not None else "",
        "role": who.role if who is not None else "",
        "status": str(participant.status or ""),
        # Answered "misschien" and nothing definite since (status stays invited).
        "maybe": participant.status is ParticipantStatus.INVITED
        and participant.tentative_at is not None,
        "session": session.title if session is not None else (extra.get("session_title") or None),
        "session_key": session.key if session is not None else None,
        "offer_expires": (
            format_moment(expires, cfg.tz, lang) if isinstance(expires, datetime) else None
        ),
        "companion_of": inviter.person.name if inviter is not None else None,
        "dietary": participant.dietary or "",
    }
