"""The outbox's quick path writes exactly the bytes the email package writes.

`build_message_bytes()` (what `queue_mail` stores) skips the email package for the usual
shapes of mail (mail_templates/fastmime.py). Every mail here is built both ways from the same
input, with the same random seed for the MIME boundaries and a frozen clock, and the bytes
must be identical: every kind in both languages (the snapshot scenarios), and headers that
make folding and encoding work hard (non-ASCII and quoted names, long names and subjects,
threads, one-click unsubscribe).
"""

from __future__ import annotations

import random
from email.message import EmailMessage
from typing import Any

import pytest

import tests.test_mail_templates as mail_tests
from mail_templates import build_message, build_message_bytes
from mail_templates.fastmime import fold
from mail_templates.headers import SMTP_POLICY
from tests.test_mail_templates import TOKEN_NL, World, scenario
from workflows.outbox import MailKind

SEEDS = (1, 20230201)

# The rendering tests' module fixtures, under names of our own: the shared mail database
# (`mail_world`), strict templates and the frozen clock (both autouse).
mail_world = mail_tests.world
strict_templates = mail_tests.strict_templates
frozen_clock = mail_tests.frozen_clock


def _both_ways(**kwargs: Any) -> tuple[bytes, bytes]:
    seed = random.randrange(1 << 30)
    random.seed(seed)
    slow = build_message(**kwargs).as_bytes()
    random.seed(seed)
    quick = build_message_bytes(**kwargs)
    return slow, quick


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Makes the scenarios build every mail both ways; collects (email package, quick)."""
    pairs: list[tuple[bytes, bytes]] = []

    def checking_build(kind: MailKind, **kwargs: Any) -> EmailMessage:
        pairs.append(_both_ways(kind=kind, **kwargs))
        return build_message(kind, **kwargs)

    monkeypatch.setattr(mail_tests, "build_message", checking_build)
    return pairs


def _assert_same(pairs: list[tuple[bytes, bytes]]) -> None:
    assert pairs, "no mail was built"
    for slow, quick in pairs:
        assert quick == slow


@pytest.mark.parametrize("lang", ["nl", "en"])
@pytest.mark.parametrize("kind", list(MailKind), ids=lambda k: k.value)
def test_every_kind_is_byte_identical(
    mail_world: World, compared: list[tuple[bytes, bytes]], kind: MailKind, lang: str
) -> None:
    for seed in SEEDS:
        random.seed(seed)
        scenario(mail_world, kind, lang)
    _assert_same(compared)


AWKWARD_NAMES = [
    "Jan",
    "J. de Vries",  # a period: str(Address) quotes the name
    "Smit, Karin",  # a comma
    'Karin "KS" Smit',
    "Özlem Yıldız-Çelik",  # non-ASCII: an encoded word
    "Ĳsbrand van 't Hoff",
    "Wethouder van Ruimtelijke Ordening, Wonen, Duurzaamheid en Economische Zaken Gemeente",
    "x" * 90,  # one word longer than a line
    "=?utf-8?q?Sneaky?=",  # looks like an encoded word
    "Anne-Marie O'Neil",
    "",
]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_awkward_names_are_byte_identical(mail_world: World, name: str) -> None:
    person = mail_world.lotte.person
    original = person.name
    person.name = name
    try:
        for kind in (MailKind.INVITATION, MailKind.REGISTRATION_CONFIRMED, MailKind.WAITLISTED):
            slow, quick = _both_ways(**_args(mail_world, kind))
            assert quick == slow
    finally:
        person.name = original


@pytest.mark.parametrize(
    "title",
    [
        "Leren van Rotterdam Zuid",
        "Café-gesprek ‘Wonen in de wijk’ — met de wethouders van Zuid",  # non-ASCII subject
        "Een heel lange titel " * 8,  # a subject folded over several lines
        "Kort",
    ],
)
def test_subjects_of_every_length_and_script_are_byte_identical(
    mail_world: World, title: str
) -> None:
    event = mail_world.event
    original = dict(event.config)
    event.config = {**original, "title": title}
    try:
        for kind in (MailKind.INVITATION, MailKind.REMINDER, MailKind.ORGANISER_NOTICE):
            notice = kind == MailKind.ORGANISER_NOTICE
            extra = {"subject": title, "lines": ["Regel"]} if notice else {}
            slow, quick = _both_ways(**_args(mail_world, kind, extra=extra))
            assert quick == slow
    finally:
        event.config = original


def test_answers_in_a_thread_are_byte_identical(mail_world: World) -> None:
    thread = tuple(f"<reply-{i}.{TOKEN_NL}@zwaanshoek.example>" for i in range(30))
    for ids in (thread[:1], thread[:3], thread, ("not an id", *thread[:2])):
        slow, quick = _both_ways(**_args(mail_world, MailKind.QUESTION_ACK, in_reply_to=ids))
        assert quick == slow


def test_one_click_unsubscribe_is_byte_identical(mail_world: World) -> None:
    event = mail_world.event
    original = dict(event.config)
    event.config = {**original, "unsubscribe_url": "https://wijkwijzer.example/afmelden?lijst=zuid"}
    try:
        slow, quick = _both_ways(**_args(mail_world, MailKind.INVITATION))
        assert quick == slow
        assert b"List-Unsubscribe-Post" in quick
    finally:
        event.config = original


def test_forwarded_question_with_attachment_takes_the_general_path(mail_world: World) -> None:
    slow, quick = _both_ways(
        **_args(
            mail_world,
            MailKind.QUESTION_FORWARDED,
            person=None,
            recipient=mail_world.event.contact_email,
            extra={"question_text": "Parkeren?", "from_name": "Lotte", "from_email": "l@x.example"},
            attachments=(("original.eml", "message/rfc822", mail_tests.ORIGINAL),),
        )
    )
    assert quick == slow


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Subject", "Uitnodiging [rsvp:" + TOKEN_NL + "]"),
        ("Subject", "Héél " * 20 + "[rsvp:" + TOKEN_NL + "]"),
        ("Reply-To", f"aanmelden+{TOKEN_NL}@wijkwijzer.example"),
        ("List-Unsubscribe", f"<mailto:aanmelden+{TOKEN_NL}@wijkwijzer.example?subject=x>"),
        ("To", "Lotte El Amrani <l.elamrani@zwaanshoek.example>"),
        ("To", "lotte@zwaanshoek.example"),
        ("Date", "Tue, 10 Jan 2023 09:00:00 +0000"),
        ("Message-ID", "<0123456789abcdef.rsvpmail@wijkwijzer.example>"),
        ("X-Rsvpmail-Kind", "invitation"),
    ],
)
def test_each_header_folds_as_the_policy_folds_it(name: str, value: str) -> None:
    expected = SMTP_POLICY.fold_binary(name, SMTP_POLICY.header_factory(name, value))
    assert fold(name, value, TOKEN_NL).encode("ascii") == expected


def _args(world: World, kind: MailKind, **overrides: Any) -> dict[str, Any]:
    invitation = world.lotte
    args: dict[str, Any] = {
        "kind": kind,
        "event": world.event,
        "person": invitation.person,
        "recipient": invitation.person.email,
        "participant": None,
        "invitation": invitation,
        "extra": {},
        "message_id": mail_tests.MESSAGE_ID,
        "in_reply_to": (),
        "attachments": (),
    }
    args.update(overrides)
    if args["person"] is None and "recipient" not in overrides:
        args["recipient"] = world.event.contact_email
    return args


def _calendar_as_icalendar_writes_it(kind: MailKind, cfg: Any, **item: Any) -> bytes:
    """The calendar built whole with icalendar, as mail_templates did before caching parts."""
    from datetime import timedelta

    from icalendar import Calendar, Event

    from mail_templates.calendar import CALENDAR_SEQUENCE, PRODID, _address
    from workflows.tokens import calendar_uid

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    cal.add("calscale", "GREGORIAN")
    event = Event()
    event.add("uid", calendar_uid(item["token"]))
    event.add("sequence", CALENDAR_SEQUENCE[kind])
    event.add("dtstamp", item["stamp"])
    event.add("dtstart", cfg.starts_at.astimezone(cfg.tz))
    event.add("dtend", cfg.ends_at.astimezone(cfg.tz))
    event.add("summary", cfg.title)
    event.add("location", ", ".join(p for p in (cfg.venue, cfg.address) if p))
    event.add("description", item["description"])
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("organizer", _address(item["organiser_address"], item["organiser_name"]))
    attendee = _address(item["attendee_address"], item["attendee_name"])
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    first = CALENDAR_SEQUENCE[kind] == 0
    attendee.params["PARTSTAT"] = "NEEDS-ACTION" if first else "ACCEPTED"
    attendee.params["RSVP"] = "TRUE" if first else "FALSE"
    event.add("attendee", attendee)
    cal.add_component(event)
    cal.add_missing_timezones(
        first_date=(cfg.starts_at - timedelta(days=366)).date(),
        last_date=(cfg.ends_at + timedelta(days=366)).date(),
    )
    return bytes(cal.to_ical())


@pytest.mark.parametrize("kind", [MailKind.INVITATION, MailKind.REGISTRATION_CONFIRMED])
@pytest.mark.parametrize(
    ("token", "name", "description"),
    [
        (TOKEN_NL, "Lotte El Amrani", "Kenmerk: rsvp:" + TOKEN_NL + "\n"),
        ("x" * 26, "Özlem Yıldız-Çelik", "Wonen; werk, \\ ^ ‘quotes’ " * 12 + "rsvp:" + "x" * 26),
        ("a" * 32, "", "kort"),  # a token made of the very letter used to stand in for it
        ("k2" * 16, "Jan", "€ " * 80 + "k2" * 16 + " \\ " + "k2" * 16),
    ],
)
def test_calendar_is_what_icalendar_writes_for_the_whole_calendar(
    mail_world: World, kind: MailKind, token: str, name: str, description: str
) -> None:
    from datetime import UTC, datetime

    from mail_templates.calendar import build_calendar
    from mail_templates.compose import cached_event_config

    cfg = cached_event_config(mail_world.event)
    item: dict[str, Any] = {
        "token": token,
        "organiser_name": "WijkWijzer namens BZK",
        "organiser_address": f"aanmelden+{token}@wijkwijzer.example",
        "attendee_name": name,
        "attendee_address": "l.elamrani@zwaanshoek.example",
        "description": description,
        "stamp": datetime(2023, 1, 10, 9, 0, 7, tzinfo=UTC),
    }
    for _ in range(2):  # the second time from the caches
        assert build_calendar(kind, cfg=cfg, **item) == _calendar_as_icalendar_writes_it(
            kind, cfg, **item
        )
