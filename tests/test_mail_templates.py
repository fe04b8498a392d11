"""Mail composition: every kind in both languages, headers, calendar, sandbox, preview CLI.

Rendering tests share one SQLite database per module (built from the migrated template) with
the example event and a few invitees; they need no second backend because they only read
attributes. The outbox and preview tests use the per-test `db` fixtures (both backends).

Snapshots live in tests/snapshots/mail/<lang>/<kind>.txt (and <kind>@<branch>.txt for the
situations `branch` builds); regenerate them with
``UPDATE_SNAPSHOTS=1 pytest tests/test_mail_templates.py`` and read the diff before committing.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import html2text
import pytest
import time_machine
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db.engine import make_engine, make_sessionmaker
from db.models import Event, Invitation, OutboundMessage, Participant, ParticipantStatus, Person
from mail_templates import build_message
from mail_templates.context import build_context
from mail_templates.headers import BadAddress
from mail_templates.render import (
    MailTemplateError,
    MailTemplateSecurityError,
    render_mail,
    set_strict,
)
from tests.factories import make_event, make_person
from workflows import tokens
from workflows.events import event_config
from workflows.invitees import add_invitation
from workflows.outbox import MailKind, queue_mail

SNAPSHOTS = Path(__file__).parent / "snapshots" / "mail"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"
FROZEN_AT = datetime(2023, 1, 10, 9, 0, tzinfo=UTC)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TOKEN_NL = "lotteelamranilotteelamrani234567"
TOKEN_EN = "alexmorganalexmorganalexmorgan23"
TOKEN_COMPANION = "karinsmitkarinsmitkarinsmit23456"
TOKEN_ODD = "oddnamesoddnamesoddnamesoddname2"
MESSAGE_ID = "<0123456789abcdef.rsvpmail@wijkwijzer.example>"


@dataclass
class World:
    db: Session
    event: Event
    lotte: Invitation
    alex: Invitation
    karin: Invitation
    odd: Invitation
    people: dict[str, Person] = field(default_factory=dict)


@pytest.fixture(scope="module", autouse=True)
def strict_templates() -> Iterator[None]:
    previous = set_strict(True)
    yield
    set_strict(previous)


@pytest.fixture(scope="module", autouse=True)
def frozen_clock() -> Iterator[None]:
    with time_machine.travel(FROZEN_AT, tick=False):
        yield


@pytest.fixture(scope="module")
def world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = tmp_path_factory.mktemp("mail") / "mail.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with make_sessionmaker(engine)() as db:
        event = make_event(db)
        lotte = _invite(
            db,
            event,
            TOKEN_NL,
            "l.elamrani@zwaanshoek.example",
            "Lotte El Amrani",
            organisation="Gemeente Zwaanshoek",
            role="Wethouder Sociaal Domein",
        )
        alex = _invite(
            db,
            event,
            TOKEN_EN,
            "a.morgan@harbourside.example",
            "Alex Morgan",
            organisation="Municipality of Harbourside",
            role="Alderman for Housing",
            language="en",
        )
        karin = _invite(
            db,
            event,
            TOKEN_COMPANION,
            "k.smit@zwaanshoek.example",
            "Karin Smit",
            organisation="Gemeente Zwaanshoek",
            role="Beleidsadviseur",
        )
        odd = _invite(db, event, TOKEN_ODD, "odd@zwaanshoek.example", "Odd")
        db.commit()
        yield World(db=db, event=event, lotte=lotte, alex=alex, karin=karin, odd=odd)
    engine.dispose()


def _invite(
    db: Session, event: Event, token: str, address: str, name: str, **fields: Any
) -> Invitation:
    person = make_person(db, address, name, **fields)
    invitation, _ = add_invitation(db, event, person, batch="test", reason="test setup")
    invitation.token = token  # fixed, so snapshots and expectations are stable
    db.flush()
    return invitation


def _participant(
    world: World,
    invitation: Invitation,
    status: ParticipantStatus,
    *,
    session: str | None = None,
    offer_expires_at: datetime | None = None,
    companion_of: Participant | None = None,
) -> Participant:
    """A participant in the state a kind is sent in; transient, never added to the session."""
    sessions = {s.key: s for s in world.event.sessions}
    return Participant(
        person=invitation.person,
        status=status,
        session=sessions[session] if session else None,
        offer_expires_at=offer_expires_at,
        companion_of=companion_of,
    )


def build(
    world: World,
    kind: MailKind,
    invitation: Invitation | None,
    *,
    participant: Participant | None = None,
    person: Person | None = None,
    recipient: str | None = None,
    extra: dict[str, Any] | None = None,
    in_reply_to: tuple[str, ...] = (),
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    event: Event | None = None,
) -> EmailMessage:
    person = person if person is not None else (invitation.person if invitation else None)
    return build_message(
        kind,
        event=event or world.event,
        person=person,
        recipient=recipient or (person.email if person else ""),
        participant=participant,
        invitation=invitation,
        extra=extra or {},
        message_id=MESSAGE_ID,
        in_reply_to=in_reply_to,
        attachments=attachments,
    )


def scenario(world: World, kind: MailKind, lang: str) -> EmailMessage:
    """The mail `kind` as the rules would send it in a typical situation, in `lang`."""
    inv = world.lotte if lang == "nl" else world.alex
    reg = ParticipantStatus.REGISTERED
    p = lambda status, **kw: _participant(world, inv, status, **kw)  # noqa: E731
    if kind == MailKind.INVITATION:
        return build(world, kind, inv, participant=p(ParticipantStatus.INVITED))
    if kind == MailKind.REGISTRATION_CONFIRMED:
        # Registered with a colleague ("met mijn collega Karin Smit"), who is named.
        colleague = {"name": world.karin.person.name, "has_email": True}
        return build(
            world, kind, inv, participant=p(reg, session="wonen"), extra={"companions": [colleague]}
        )
    if kind == MailKind.SESSION_CONFIRMED:
        return build(world, kind, inv, participant=p(reg, session="wonen"))
    if kind == MailKind.COMPANION_CONFIRMED:
        head = p(reg, session="wonen")
        companion = _participant(world, world.karin, reg, session="wonen", companion_of=head)
        return build(
            world,
            kind,
            world.karin,
            participant=companion,
            person=_in_language(world.karin.person, lang),
            extra={"inviter_name": inv.person.name},
        )
    if kind == MailKind.SUBSTITUTE_CONFIRMED:
        substitute = _participant(world, world.karin, reg, session="werk")
        return build(
            world,
            kind,
            world.karin,
            participant=substitute,
            person=_in_language(world.karin.person, lang),
            extra={"replaces_name": inv.person.name, "waitlisted": False},
        )
    if kind == MailKind.WAITLISTED:
        return build(
            world,
            kind,
            inv,
            participant=p(ParticipantStatus.WAITLISTED),
            extra={"position": 3, "late": False},
        )
    if kind == MailKind.SEAT_OFFERED:
        expires = datetime(2023, 1, 12, 9, 0, tzinfo=UTC)
        return build(
            world,
            kind,
            inv,
            participant=p(ParticipantStatus.OFFERED, session="onderwijs", offer_expires_at=expires),
            extra={"party_size": 2, "expires_at": expires},
        )
    if kind == MailKind.OFFER_EXPIRED:
        return build(
            world, kind, inv, participant=p(ParticipantStatus.EXPIRED), extra={"party_size": 1}
        )
    if kind == MailKind.DECLINED_ACK:
        return build(
            world,
            kind,
            inv,
            participant=p(ParticipantStatus.DECLINED),
            extra={"substitute_name": ""},
        )
    if kind == MailKind.CANCELLATION_CONFIRMED:
        return build(
            world,
            kind,
            inv,
            participant=p(ParticipantStatus.CANCELLED),
            extra={"party_size": 2, "inviter_name": ""},
        )
    if kind in (
        MailKind.TENTATIVE_ACK,
        MailKind.NUDGE_UNANSWERED,
        MailKind.REGISTRATION_CLOSED,
        MailKind.QUESTION_ACK,
        MailKind.UNSUBSCRIBE_ACK,
    ):
        return build(world, kind, inv, participant=p(ParticipantStatus.INVITED))
    if kind == MailKind.CHOOSE_SESSION:
        return build(world, kind, inv, participant=p(reg))
    if kind == MailKind.REMINDER:
        return build(
            world, kind, inv, participant=p(reg, session="veiligheid"), extra={"days_before": 1}
        )
    if kind == MailKind.FOLLOWUP_ATTENDED:
        return build(world, kind, inv, participant=p(ParticipantStatus.ATTENDED, session="wonen"))
    if kind == MailKind.FOLLOWUP_ABSENT:
        return build(world, kind, inv, participant=p(ParticipantStatus.NO_SHOW))
    if kind == MailKind.QUESTION_FORWARDED:
        return build(
            world,
            kind,
            inv,
            person=None,
            recipient=world.event.contact_email,
            event=_event_in_language(world, lang),
            participant=p(reg, session="wonen"),
            extra={
                "question_text": "Is er parkeergelegenheid?\nEn kan ik later komen?",
                "from_name": inv.person.name,
                "from_email": inv.person.email,
            },
            attachments=(("original.eml", "message/rfc822", ORIGINAL),),
        )
    if kind == MailKind.ORGANISER_NOTICE:
        return build(
            world,
            kind,
            None,
            person=None,
            recipient=world.event.contact_email,
            event=_event_in_language(world, lang),
            extra=NOTICES["seats_freed"],
        )
    raise AssertionError(f"no scenario for {kind}")


ORIGINAL = (
    b"From: Lotte El Amrani <l.elamrani@zwaanshoek.example>\r\n"
    b"To: aanmelden+" + TOKEN_NL.encode() + b"@wijkwijzer.example\r\n"
    b"Subject: Re: Uitnodiging\r\n"
    b"Message-ID: <vraag-1@zwaanshoek.example>\r\n"
    b"\r\n"
    b"Is er parkeergelegenheid?\r\nEn kan ik later komen?\r\n"
)


# One example of every organiser notice, with the facts the rules pass.
NOTICES: dict[str, dict[str, Any]] = {
    "undeliverable": {
        "notice": "undeliverable",
        "name": "Lotte El Amrani",
        "email": "l.elamrani@zwaanshoek.example",
        "reason": "550 5.1.1 <l.elamrani@zwaanshoek.example>: Recipient address rejected: "
        "User unknown",
        "role": "invitee",
        "inviter": "",
        "status": "registered",
    },
    "late_acceptance": {
        "notice": "late_acceptance",
        "name": "Lotte El Amrani",
        "email": "l.elamrani@zwaanshoek.example",
        "party_size": 2,
        "position": 4,
        "seats_free": 1,
    },
    "offer_unreachable": {
        "notice": "offer_unreachable",
        "name": "Jan de Boer",
        "party_size": 1,
        "expires_at": datetime(2023, 1, 12, 9, 0, tzinfo=UTC),
    },
    "seats_freed": {
        "notice": "seats_freed",
        "name": "Lotte El Amrani",
        "email": "l.elamrani@zwaanshoek.example",
        "count": 1,
        "status": "cancelled",
        "seats_free": 1,
        "waiting": 0,
        "after_deadline": True,
    },
    "registration_closed": {
        "notice": "registration_closed",
        "registered": 3,
        "companions": 1,
        "waitlisted": 1,
        "offered": 0,
        "declined": 2,
        "cancelled": 1,
        "expired": 0,
        "no_answer": 1,
        "capacity": 40,
        "seats_free": 37,
    },
    "loop_brake": {"notice": "loop_brake", "sender": "robot@zwaanshoek.example", "cap": 5},
}


def _in_language(person: Person, lang: str) -> Person:
    """A detached copy of `person` reading `lang` (the stored rows stay as they are)."""
    return Person(
        email=person.email,
        name=person.name,
        organisation=person.organisation,
        role=person.role,
        language=lang,
    )


def _event_in_language(world: World, lang: str) -> Event:
    """Organiser mail follows the event's language: a detached event copy in `lang`."""
    if lang == world.event.language:
        return world.event
    source = world.event
    copy = Event(**{c.key: getattr(source, c.key) for c in Event.__table__.columns})
    copy.language = lang
    copy.sessions = []  # not needed for organiser mail; keeps the copy detached
    return copy


# --- snapshots ---------------------------------------------------------------------------


def snapshot_text(msg: EmailMessage) -> str:
    """Subject, addressing, the plain text and the HTML reduced to readable text."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_tables = True  # layout tables would only add noise
    # A space before each closing cell keeps "Datum" and its value apart once tables go.
    html = re.sub(r"</t[hd]>", r" \g<0>", _part(msg, "text/html").get_content())
    lines = [
        f"Subject: {msg['Subject']}",
        f"To: {msg['To']}",
        f"Reply-To: {msg['Reply-To']}",
        "",
        _part(msg, "text/plain").get_content().rstrip("\n"),
        "",
        "======== HTML (as text) ========",
        # html2text ends every list with three blank lines the mail itself does not have.
        re.sub(r"\n{3,}", "\n\n", converter.handle(html)).strip("\n"),
        "",
    ]
    return "\n".join(lines)


@pytest.mark.parametrize("lang", ["nl", "en"])
@pytest.mark.parametrize("kind", list(MailKind), ids=lambda k: k.value)
def test_snapshot(world: World, kind: MailKind, lang: str) -> None:
    _compare_snapshot(scenario(world, kind, lang), SNAPSHOTS / lang / f"{kind.value}.txt")


def branch(world: World, name: str, lang: str) -> EmailMessage:
    """A mail in another situation than its kind's typical one (snapshot `<kind>@<name>`)."""
    inv = world.lotte if lang == "nl" else world.alex
    expires = datetime(2023, 1, 12, 9, 0, tzinfo=UTC)
    p = lambda status, **kw: _participant(world, inv, status, **kw)  # noqa: E731
    if name == "session_confirmed@waitlisted":
        waiting = p(ParticipantStatus.WAITLISTED, session="wonen")
        extra = {"position": 2}
        return build(world, MailKind.SESSION_CONFIRMED, inv, participant=waiting, extra=extra)
    if name == "session_confirmed@offered":
        offered = p(ParticipantStatus.OFFERED, session="wonen", offer_expires_at=expires)
        return build(world, MailKind.SESSION_CONFIRMED, inv, participant=offered)
    if name == "tentative_ack@full":
        return build(world, MailKind.TENTATIVE_ACK, inv, extra={"seats_free": 0, "waiting": 0})
    if name == "declined_ack@declined_offer":
        declined = p(ParticipantStatus.DECLINED)
        extra = {"substitute_name": "", "declined_offer": True}
        return build(world, MailKind.DECLINED_ACK, inv, participant=declined, extra=extra)
    if name.startswith("organiser_notice@"):
        return build(
            world,
            MailKind.ORGANISER_NOTICE,
            None,
            person=None,
            recipient=world.event.contact_email,
            event=_event_in_language(world, lang),
            extra=BOUNCE_NOTICES[name.partition("@")[2]],
        )
    raise AssertionError(f"no branch {name}")


# The undeliverable notice for each kind of person a bounce can be about.
BOUNCE_NOTICES: dict[str, dict[str, Any]] = {
    "undeliverable_companion": {
        **NOTICES["undeliverable"],
        "name": "Karin Smit",
        "email": "k.smit@zwaanshoek.example",
        "reason": "550 5.1.1 <k.smit@zwaanshoek.example>: Recipient address rejected",
        "role": "companion",
        "inviter": "Lotte El Amrani",
        "status": "waitlisted",
    },
    "undeliverable_substitute": {
        **NOTICES["undeliverable"],
        "name": "Jan de Boer",
        "email": "j.deboer@zwaanshoek.example",
        "reason": "550 5.1.1 <j.deboer@zwaanshoek.example>: Recipient address rejected",
        "role": "substitute",
        "inviter": "Lotte El Amrani",
        "status": "registered",
    },
    "undeliverable_cancelled": {**NOTICES["undeliverable"], "status": "cancelled"},
    "undeliverable_no_diagnostic": {**NOTICES["undeliverable"], "reason": "", "status": ""},
}
BRANCHES = (
    "session_confirmed@waitlisted",
    "session_confirmed@offered",
    "tentative_ack@full",
    "declined_ack@declined_offer",
    *(f"organiser_notice@{name}" for name in BOUNCE_NOTICES),
)


@pytest.mark.parametrize("lang", ["nl", "en"])
@pytest.mark.parametrize("name", BRANCHES)
def test_snapshot_of_a_branch(world: World, name: str, lang: str) -> None:
    _compare_snapshot(branch(world, name, lang), SNAPSHOTS / lang / f"{name}.txt")


def _compare_snapshot(msg: EmailMessage, path: Path) -> None:
    actual = snapshot_text(msg)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_SNAPSHOTS=1 and review it"
    assert actual == path.read_text(encoding="utf-8"), f"{path} differs (UPDATE_SNAPSHOTS=1)"


@pytest.mark.parametrize("kind", list(MailKind), ids=lambda k: k.value)
def test_every_kind_has_plain_text_html_and_its_language(world: World, kind: MailKind) -> None:
    for lang, greeting in (("nl", "Beste"), ("en", "Dear")):
        msg = scenario(world, kind, lang)
        assert msg["Content-Language"] == lang
        assert _part(msg, "text/plain").get_content().startswith(greeting)
        html = _part(msg, "text/html").get_content()
        assert "<style" not in html and 'style="' in html  # CSS inlined for Outlook


# --- headers -----------------------------------------------------------------------------


def test_addressing_headers(world: World) -> None:
    msg = build(world, MailKind.REGISTRATION_CONFIRMED, world.lotte)
    assert msg["Message-ID"] == MESSAGE_ID
    assert msg["From"].addresses[0].addr_spec == "aanmelden@wijkwijzer.example"
    assert msg["To"].addresses[0].addr_spec == "l.elamrani@zwaanshoek.example"
    assert msg["Reply-To"] == f"aanmelden+{TOKEN_NL}@wijkwijzer.example"
    assert tokens.find_in_address(msg["Reply-To"]) == TOKEN_NL
    assert msg["Date"].datetime == FROZEN_AT
    assert msg["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert "Precedence" not in msg


def test_token_marker_in_subject_and_both_bodies(world: World) -> None:
    msg = build(world, MailKind.INVITATION, world.lotte)
    assert msg["Subject"].endswith(f"[rsvp:{TOKEN_NL}]")
    assert tokens.find_in_text(msg["Subject"]) == TOKEN_NL
    assert f"Kenmerk: rsvp:{TOKEN_NL}" in _part(msg, "text/plain").get_content()
    assert tokens.find_in_text(_part(msg, "text/html").get_content()) == TOKEN_NL


def test_mail_without_invitation_goes_to_the_plain_reply_address(world: World) -> None:
    msg = build(world, MailKind.UNSUBSCRIBE_ACK, None, person=world.lotte.person)
    assert msg["Reply-To"] == "aanmelden@wijkwijzer.example"
    assert "rsvp:" not in msg["Subject"]
    assert msg["List-Unsubscribe"] == (
        "<mailto:aanmelden@wijkwijzer.example?subject=unsubscribe&body=unsubscribe>"
    )


def test_answer_threads_and_says_auto_replied(world: World) -> None:
    fresh = build(world, MailKind.INVITATION, world.lotte)
    assert fresh["Auto-Submitted"] == "auto-generated"
    assert "In-Reply-To" not in fresh and "References" not in fresh

    # queue_mail passes the parent first, then the parent's own References (oldest first).
    answer = build(
        world,
        MailKind.DECLINED_ACK,
        world.lotte,
        in_reply_to=("<reply@x.example>", "<root@y.example>", "<mid@y.example>"),
    )
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer["In-Reply-To"] == "<reply@x.example>"
    assert answer["References"].split() == [
        "<root@y.example>",
        "<mid@y.example>",
        "<reply@x.example>",
    ]


def test_garbage_message_ids_are_not_copied_into_headers(world: World) -> None:
    answer = build(
        world,
        MailKind.DECLINED_ACK,
        world.lotte,
        in_reply_to=("<ok@x.example>", "not an id\r\nBcc: evil@x.example"),
    )
    assert answer["References"] == "<ok@x.example>"
    assert b"evil" not in answer.as_bytes()


def test_list_unsubscribe_mailto_and_one_click(world: World) -> None:
    msg = build(world, MailKind.REMINDER, world.lotte, extra={"days_before": 7})
    assert msg["List-Unsubscribe"] == (
        f"<mailto:aanmelden+{TOKEN_NL}@wijkwijzer.example?subject=unsubscribe&body=unsubscribe>"
    )
    assert "List-Unsubscribe-Post" not in msg  # no https URL configured

    other = make_event(
        world.db, slug="met-afmeldlink", unsubscribe_url="https://wijkwijzer.example/afmelden"
    )
    one_click = build(world, MailKind.REMINDER, world.lotte, event=other, extra={"days_before": 7})
    assert one_click["List-Unsubscribe"].startswith(
        f"<https://wijkwijzer.example/afmelden?token={TOKEN_NL}>, <mailto:"
    )
    assert one_click["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    world.db.rollback()


def test_organiser_mail_has_no_token_and_no_unsubscribe(world: World) -> None:
    msg = scenario(world, MailKind.QUESTION_FORWARDED, "nl")
    assert msg["To"].addresses[0].display_name == "Marieke de Vries"
    assert msg["Reply-To"] == "l.elamrani@zwaanshoek.example"  # answer goes to the asker
    assert "rsvp:" not in msg.as_string()
    assert "List-Unsubscribe" not in msg


def test_forwarded_question_carries_the_original_as_message_rfc822(world: World) -> None:
    msg = scenario(world, MailKind.QUESTION_FORWARDED, "nl")
    attached = [p for p in msg.iter_attachments() if p.get_content_type() == "message/rfc822"]
    assert len(attached) == 1
    assert attached[0].get_filename() == "original.eml"
    original = attached[0].get_content()
    assert original["Message-ID"] == "<vraag-1@zwaanshoek.example>"
    assert "parkeergelegenheid" in original.get_content()


def test_header_injection_in_a_name_stays_in_the_display_name(world: World) -> None:
    person = Person(
        email="jan@zwaanshoek.example", name="Jan\r\nBcc: evil@x.example", language="nl"
    )
    msg = build(
        world, MailKind.QUESTION_ACK, world.lotte, person=person, recipient="jan@zwaanshoek.example"
    )
    raw = msg.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc:") for line in head.split(b"\r\n"))
    assert [a.addr_spec for a in parsed["To"].addresses] == ["jan@zwaanshoek.example"]
    assert parsed["To"].addresses[0].display_name == "Jan Bcc: evil@x.example"
    assert "Beste Jan Bcc: evil@x.example," in _part(parsed, "text/plain").get_content()


def test_non_ascii_name_round_trips(world: World) -> None:
    person = Person(email="u.celik@zwaanshoek.example", name="Ümit Çelik", language="nl")
    raw = build(
        world,
        MailKind.QUESTION_ACK,
        world.lotte,
        person=person,
        recipient="u.celik@zwaanshoek.example",
    ).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # encoded words, not raw UTF-8 in headers
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == "Ümit Çelik"
    assert "Beste Ümit Çelik," in _part(parsed, "text/plain").get_content()


def test_bad_recipient_address_is_a_clear_error(world: World) -> None:
    with pytest.raises(BadAddress, match="recipient of invitation: not a usable e-mail address"):
        build(world, MailKind.INVITATION, world.lotte, recipient="not an address")


def test_html_escapes_names_and_text_keeps_them(world: World) -> None:
    person = Person(email="x@zwaanshoek.example", name="<script>alert(1)</script>", language="nl")
    msg = build(
        world, MailKind.QUESTION_ACK, world.lotte, person=person, recipient="x@zwaanshoek.example"
    )
    html = _part(msg, "text/html").get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Beste <script>alert(1)</script>," in _part(msg, "text/plain").get_content()


# --- calendar ----------------------------------------------------------------------------


def _calendar(msg: EmailMessage) -> Calendar:
    part = _part(msg, "text/calendar")
    assert part.get_param("method") == "REQUEST"
    return Calendar.from_ical(part.get_content())


def test_invitation_calendar_asks_for_an_answer_to_the_token_address(world: World) -> None:
    msg = build(world, MailKind.INVITATION, world.lotte)
    assert _part(msg, "text/calendar") in list(_part(msg, "multipart/alternative").iter_parts())
    cal = _calendar(msg)
    assert str(cal["METHOD"]) == "REQUEST"
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Amsterdam"]
    [item] = cal.walk("VEVENT")
    assert str(item["UID"]) == tokens.calendar_uid(TOKEN_NL)
    assert int(item["SEQUENCE"]) == 0
    assert str(item["ORGANIZER"]) == f"mailto:aanmelden+{TOKEN_NL}@wijkwijzer.example"
    attendee = item["ATTENDEE"]
    assert str(attendee) == "mailto:l.elamrani@zwaanshoek.example"
    assert attendee.params["RSVP"] == "TRUE"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    start = item.decoded("DTSTART")
    assert start == datetime(2023, 2, 1, 13, 0, tzinfo=AMSTERDAM)
    assert item["DTSTART"].params["TZID"] == "Europe/Amsterdam"
    assert start.utcoffset() == timedelta(hours=1)
    ics = [p for p in msg.iter_attachments() if p.get_filename() == "invite.ics"]
    assert len(ics) == 1 and ics[0].get_content_type() == "application/ics"


def test_confirmation_updates_the_same_calendar_item(world: World) -> None:
    invitation = _calendar(build(world, MailKind.INVITATION, world.lotte)).walk("VEVENT")[0]
    confirmed_msg = build(
        world,
        MailKind.REGISTRATION_CONFIRMED,
        world.lotte,
        participant=_participant(world, world.lotte, ParticipantStatus.REGISTERED, session="wonen"),
    )
    confirmed = _calendar(confirmed_msg).walk("VEVENT")[0]
    assert str(confirmed["UID"]) == str(invitation["UID"])
    assert int(confirmed["SEQUENCE"]) > int(invitation["SEQUENCE"])
    assert confirmed["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    assert "Wonen: herstructurering en leefbaarheid" in str(confirmed["DESCRIPTION"])


def test_calendar_only_where_it_belongs(world: World) -> None:
    assert _has_part(scenario(world, MailKind.COMPANION_CONFIRMED, "nl"), "text/calendar")
    assert not _has_part(scenario(world, MailKind.WAITLISTED, "nl"), "text/calendar")
    waiting_substitute = build(
        world,
        MailKind.SUBSTITUTE_CONFIRMED,
        world.karin,
        extra={"replaces_name": "Lotte El Amrani", "waitlisted": True, "position": 2},
    )
    assert not _has_part(waiting_substitute, "text/calendar")
    assert "op de wachtlijst" in _part(waiting_substitute, "text/plain").get_content()


# --- override templates and the sandbox ---------------------------------------------------


def test_override_template_is_used(world: World, tmp_path: Path) -> None:
    (tmp_path / "nl").mkdir()
    (tmp_path / "nl" / "invitation.subject.j2").write_text(
        "Kom naar {{ event.title }}!", encoding="utf-8"
    )
    event = make_event(world.db, slug="eigen-sjablonen", extra={"templates_dir": str(tmp_path)})
    try:
        msg = build(world, MailKind.INVITATION, world.lotte, event=event)
        assert msg["Subject"] == (
            f"Kom naar Leren van Rotterdam Zuid: wethouders in de wijk! [rsvp:{TOKEN_NL}]"
        )
        # The parts that were not overridden still come from the built-in templates.
        assert "Aanmelden" in _part(msg, "text/plain").get_content()
    finally:
        world.db.rollback()


def test_sandbox_refuses_an_escape_attempt(world: World, tmp_path: Path) -> None:
    (tmp_path / "nl").mkdir()
    (tmp_path / "nl" / "invitation.txt.j2").write_text(
        "{{ ''.__class__.__mro__ }}", encoding="utf-8"
    )
    context = _context(world, MailKind.INVITATION, "nl")
    with pytest.raises(MailTemplateSecurityError, match=r"invitation\.txt\.j2.*__class__"):
        render_mail("invitation", "nl", context, tmp_path)
    previous = set_strict(False)  # lenient production mode must refuse it just as well
    try:
        with pytest.raises(MailTemplateSecurityError):
            render_mail("invitation", "nl", context, tmp_path)
    finally:
        set_strict(previous)


def test_override_syntax_error_names_file_and_line(world: World, tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "reminder.txt.j2").write_text("Hello\n{% if %}\n", encoding="utf-8")
    with pytest.raises(MailTemplateError, match=r"reminder\.txt\.j2, line 2"):
        render_mail("reminder", "en", _context(world, MailKind.REMINDER, "en"), tmp_path)


def test_undefined_is_an_error_in_tests_and_empty_in_production(
    world: World, tmp_path: Path
) -> None:
    (tmp_path / "nl").mkdir()
    (tmp_path / "nl" / "question_ack.subject.j2").write_text(
        "Vraag{{ extra.typo_here }} ontvangen", encoding="utf-8"
    )
    context = _context(world, MailKind.QUESTION_ACK, "nl")
    with pytest.raises(MailTemplateError, match="typo_here"):
        render_mail("question_ack", "nl", context, tmp_path)
    previous = set_strict(False)
    try:
        assert render_mail("question_ack", "nl", context, tmp_path).subject == ("Vraag ontvangen")
    finally:
        set_strict(previous)


def test_missing_extras_fall_back_to_defaults(world: World) -> None:
    # The rules may leave an extra out; the mail is still complete and sensible.
    waitlisted = build(world, MailKind.WAITLISTED, world.lotte)
    assert "u staat op plaats" not in _part(waitlisted, "text/plain").get_content()
    notice = build(
        world,
        MailKind.ORGANISER_NOTICE,
        None,
        person=None,
        recipient=world.event.contact_email,
        extra={"lines": "één regel"},
    )
    assert notice["Subject"].startswith("Melding – ")
    assert "- één regel" in _part(notice, "text/plain").get_content()


# --- wording: organiser notices ------------------------------------------------------------


def _notice(world: World, lang: str, extra: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, plain text and HTML of an organiser notice for an event in `lang`."""
    msg = build(
        world,
        MailKind.ORGANISER_NOTICE,
        None,
        person=None,
        recipient=world.event.contact_email,
        event=_event_in_language(world, lang),
        extra=extra,
    )
    return msg["Subject"], _part(msg, "text/plain").get_content(), _html(msg)


# Words of the former hard-coded English notices, which must not turn up in a Dutch one.
ENGLISH = re.compile(
    r"\b(seat|seats|seat\(s\)|undeliverable|waitlist|late acceptance|accepted|offer|offers|"
    r"party of|deadline|by hand|notice|free now|people waiting)\b",
    re.IGNORECASE,
)


@pytest.mark.parametrize("name", list(NOTICES))
def test_organiser_notices_are_written_in_the_events_language(world: World, name: str) -> None:
    subject, text, html = _notice(world, "nl", NOTICES[name])
    assert not ENGLISH.search(subject + text), f"English in a Dutch notice:\n{subject}\n{text}"
    assert "Dit is een melding van het aanmeldsysteem" in text
    english_subject, english_text, _ = _notice(world, "en", NOTICES[name])
    assert "This is a notice from the registration system" in english_text
    assert english_subject != subject
    # Every line of the notice is a bullet in both parts; names and addresses are escaped.
    bullets = [line for line in text.splitlines() if line.startswith("- ")]
    assert bullets and len(bullets) == html.count("<li")
    assert "<l.elamrani@" not in html


def test_freed_seats_are_counted_in_good_dutch_and_english(world: World) -> None:
    one = NOTICES["seats_freed"]
    subject, text, _ = _notice(world, "nl", one)
    assert subject.startswith("1 plaats vrijgekomen: Lotte El Amrani – ")
    assert "Daardoor is er 1 plaats vrijgekomen." in text
    assert "Op dit moment is er 1 plaats vrij; op de wachtlijst staat niemand." in text
    assert "Na sluiting van de aanmelding worden vrijgekomen plaatsen niet automatisch" in text

    two = {**one, "count": 2, "status": "expired", "seats_free": 2, "waiting": 3}
    subject, text, _ = _notice(world, "nl", {**two, "after_deadline": False})
    assert subject.startswith("2 plaatsen vrijgekomen: Lotte El Amrani – ")
    assert "Daardoor zijn er 2 plaatsen vrijgekomen." in text
    assert "zijn er 2 plaatsen vrij; op de wachtlijst staan 3 personen." in text
    assert "Zo kort voor het begin van de bijeenkomst worden" in text
    assert "Wilt u de plaatsen toch vergeven" in text

    subject, text, _ = _notice(world, "en", one)
    assert subject.startswith("1 place freed: Lotte El Amrani – ")
    assert "so 1 place has become free." in text
    subject, text, _ = _notice(world, "en", two)
    assert subject.startswith("2 places freed: ")
    assert "so 2 places have become free." in text


def test_notice_dates_are_written_out_like_every_other_date(world: World) -> None:
    _, closed, _ = _notice(world, "nl", NOTICES["registration_closed"])
    assert "aanmelden kon tot en met woensdag 25 januari 2023." in closed
    assert "25-01-2023" not in closed
    assert "Aangemeld: 3 (onder wie 1 meegebrachte collega)" in closed
    _, unreachable, _ = _notice(world, "nl", NOTICES["offer_unreachable"])
    assert "geldig tot donderdag 12 januari 2023, 10:00 uur." in unreachable
    _, english, _ = _notice(world, "en", NOTICES["registration_closed"])
    assert "the deadline was Wednesday 25 January 2023." in english


def test_loop_brake_notice_counts_one_answer_in_the_singular(world: World) -> None:
    _, text, _ = _notice(world, "nl", {**NOTICES["loop_brake"], "cap": 1})
    assert "heeft vandaag al 1 automatisch antwoord van het aanmeldsysteem gekregen." in text
    _, text, _ = _notice(world, "en", NOTICES["loop_brake"])
    assert "has already received 5 automatic replies" in text


# --- wording: what is true for any event ---------------------------------------------------


def test_registration_confirmation_names_the_colleagues_registered_along(world: World) -> None:
    # Read from the database when the rules pass nothing: Lotte registered with Karin.
    head, karin = (_stored_participant(world, inv) for inv in (world.lotte, world.karin))
    head.status = karin.status = ParticipantStatus.REGISTERED
    karin.companion_of = head
    guest = make_person(world.db, "guest-x@no-address.rsvpmail.invalid", "Jan de Boer")
    world.db.flush()
    try:
        text = _part(
            build(world, MailKind.REGISTRATION_CONFIRMED, world.lotte, participant=head),
            "text/plain",
        ).get_content()
        assert (
            "Ook uw collega Karin Smit is aangemeld en ontvangt van ons een eigen bevestiging."
            in text
        )
        # A colleague named without an address gets no mail: the inviter is asked to pass it on.
        world.db.add(
            Participant(
                event=world.event,
                person=guest,
                status=ParticipantStatus.REGISTERED,
                companion_of=head,
            )
        )
        world.db.flush()
        msg = build(world, MailKind.REGISTRATION_CONFIRMED, world.lotte, participant=head)
        text = _part(msg, "text/plain").get_content()
        assert (
            "Ook uw collega's Karin Smit en Jan de Boer zijn aangemeld. Karin Smit ontvangt van "
            "ons een eigen bevestiging. Van Jan de Boer hebben wij geen e-mailadres; wilt u deze "
            "bevestiging doorsturen?"
        ) in text
        assert "Karin Smit en Jan de Boer zijn aangemeld" in _html(msg)
    finally:
        world.db.rollback()
    alone = build(
        world,
        MailKind.REGISTRATION_CONFIRMED,
        world.lotte,
        participant=_participant(world, world.lotte, ParticipantStatus.REGISTERED),
    )
    assert (
        "collega"
        not in _part(alone, "text/plain").get_content().split("--")[0].split("Heeft u vragen?")[0]
    )


def _stored_participant(world: World, invitation: Invitation) -> Participant:
    return world.db.scalars(
        select(Participant).where(
            Participant.event_id == world.event.id,
            Participant.person_id == invitation.person_id,
        )
    ).one()


def _bare_event(world: World) -> Event:
    """An event without deelsessies, programme, description, materials or survey."""
    return make_event(
        world.db,
        slug="zonder-deelsessies",
        sessions=(),
        programme=(),
        materials=(),
        description="",
        survey_url="",
    )


def test_an_event_without_sessions_or_materials_promises_neither(world: World) -> None:
    event = _bare_event(world)
    try:
        for kind in MailKind:
            if kind in (MailKind.CHOOSE_SESSION, MailKind.SESSION_CONFIRMED):
                continue  # only sent when the event has deelsessies
            for lang in ("nl", "en"):
                text = _body(_variant(world, kind, lang, event=event))
                assert not re.search(r"deelsessie|\bsession", text, re.IGNORECASE), (kind, text)
                assert not re.search(r"materia|presentati|verslag|report", text), (kind, text)
    finally:
        world.db.rollback()


def test_no_text_written_for_the_first_event_only(world: World) -> None:
    for kind in MailKind:
        for lang in ("nl", "en"):
            # The event's own description may say anything; the templates may not.
            description = event_config(world.event).description.strip()
            text = _body(scenario(world, kind, lang)).replace(description, "")
            for phrase in (
                "de wijk in",
                "in de wijk is besproken",
                "eigen gemeente",
                "de presentaties en het verslag",
                "neighbourhood",
                "own municipality",
                "presentations and the report",
            ):
                assert phrase not in text, (kind, lang, phrase)


def test_cancellation_promises_no_seat_to_the_waitlist(world: World) -> None:
    for inv in (world.lotte, world.alex):
        for extra in ({"party_size": 1}, {"party_size": 2, "inviter_name": "Lotte El Amrani"}):
            msg = build(world, MailKind.CANCELLATION_CONFIRMED, inv, extra=extra)
            text = _body(msg)
            assert "wachtlijst" not in text and "waiting list" not in text


def test_declined_after_the_deadline_is_not_asked_to_answer_by_it(world: World) -> None:
    msg = build(world, MailKind.DECLINED_ACK, world.lotte)
    assert "Laat het ons dan uiterlijk woensdag 25 januari 2023 weten." in _body(msg)
    with time_machine.travel(datetime(2023, 1, 27, 9, 0, tzinfo=UTC), tick=False):
        late = build(world, MailKind.DECLINED_ACK, world.lotte)
    assert "uiterlijk" not in _body(late)


# --- layout: paragraphs and quotes -----------------------------------------------------------


def _variant(
    world: World,
    kind: MailKind,
    lang: str,
    *,
    event: Event | None = None,
    extra: dict[str, Any] | None = None,
    session: str | None = None,
) -> EmailMessage:
    """Mail `kind` in `lang` for the given event and extras (participant without a session
    unless one is named)."""
    if kind in (MailKind.ORGANISER_NOTICE, MailKind.QUESTION_FORWARDED):
        return build(
            world,
            kind,
            None,
            person=None,
            recipient=world.event.contact_email,
            event=event or _event_in_language(world, lang),
            extra=extra or {},
        )
    inv = world.lotte if lang == "nl" else world.alex
    participant = _participant(world, inv, ParticipantStatus.REGISTERED, session=session)
    return build(world, kind, inv, participant=participant, event=event, extra=extra)


def _variants(world: World) -> Iterator[tuple[str, EmailMessage]]:
    """Every kind in both languages, in its typical scenario and in the other branches its
    templates have, for the example event and for one without deelsessies."""
    for lang in ("nl", "en"):
        for kind in MailKind:
            yield f"{lang} {kind.value}", scenario(world, kind, lang)
            yield f"{lang} {kind.value} (no session)", _variant(world, kind, lang)
        branches: list[tuple[MailKind, dict[str, Any]]] = [
            (MailKind.DECLINED_ACK, {"substitute_name": "Karin Smit"}),
            (MailKind.CANCELLATION_CONFIRMED, {"party_size": 2, "inviter_name": "Lotte"}),
            (MailKind.CANCELLATION_CONFIRMED, {"party_size": 3}),
            (MailKind.WAITLISTED, {"position": 2, "late": True}),
            (MailKind.SUBSTITUTE_CONFIRMED, {"replaces_name": "Lotte", "waitlisted": True}),
            (MailKind.SUBSTITUTE_CONFIRMED, {"waitlisted": False}),
            (MailKind.SEAT_OFFERED, {"party_size": 1}),
            (MailKind.SEAT_OFFERED, {"party_size": 3}),
            (MailKind.REMINDER, {"days_before": 0}),
            (MailKind.REMINDER, {"days_before": 7}),
            (MailKind.REMINDER, {"days_before": None}),
            (
                MailKind.REGISTRATION_CONFIRMED,
                {
                    "companions": [
                        {"name": "Karin Smit", "has_email": True},
                        {"name": "Jan de Boer", "has_email": False},
                    ]
                },
            ),
            (MailKind.ORGANISER_NOTICE, {"subject": "Eigen melding", "lines": ["Regel."]}),
            (MailKind.ORGANISER_NOTICE, {}),
            *((MailKind.ORGANISER_NOTICE, facts) for facts in NOTICES.values()),
        ]
        for kind, extra in branches:
            yield f"{lang} {kind.value} {extra}", _variant(world, kind, lang, extra=extra)
        for name in BRANCHES:
            yield f"{lang} {name}", branch(world, name, lang)
    event = _bare_event(world)
    try:
        for lang in ("nl", "en"):
            for kind in MailKind:
                yield f"{lang} {kind.value} (bare event)", _variant(world, kind, lang, event=event)
    finally:
        world.db.rollback()


def paragraph_problems(text: str) -> list[str]:
    """Where the plain text does not have exactly one blank line between paragraphs.

    A paragraph is a run of lines; a line ending a sentence must be followed by a blank
    line, unless what follows belongs to it (a list, a quoted question, a link).
    """
    body = text.split("\n--\n")[0]  # the footer's lines belong together
    problems = [f"{m.group(0)!r}: more than one blank line" for m in re.finditer(r"\n\n\n+", body)]
    lines = body.split("\n")
    for line, following in itertools.pairwise(lines):
        if not line.strip() or not following.strip():
            continue
        if line.rstrip()[-1] in ".?!" and not following.startswith(("- ", "> ", "http")):
            problems.append(f"no blank line between {line[-40:]!r} and {following[:40]!r}")
    problems += [
        f"no space after a sentence: {m.group(0)!r}" for m in re.finditer(r"[a-z][.?!][A-Z]", body)
    ]
    return problems


def test_exactly_one_blank_line_between_paragraphs_in_every_mail(world: World) -> None:
    problems = []
    for name, msg in _variants(world):
        problems += [
            f"{name}: {p}" for p in paragraph_problems(_part(msg, "text/plain").get_content())
        ]
        html = _part(msg, "text/html").get_content()
        problems += [f"{name}: empty paragraph" for _ in re.finditer(r"<p[^>]*>\s*</p>", html)]
    assert not problems, "\n".join(problems)


def test_one_quotation_style(world: World) -> None:
    # Words to type and examples are quoted ‘like this’, in the text and the HTML alike.
    for name, msg in _variants(world):
        for content_type in ("text/plain", "text/html"):
            content = _part(msg, content_type).get_content()
            if content_type == "text/html":
                content = re.sub(r"<[^>]*>", "", content)  # attributes use "
            assert not re.search(r"[\"“”]", content), (name, content_type)


def _context(world: World, kind: MailKind, lang: str) -> dict[str, Any]:
    """What the templates of `kind` see, for Lotte (context as build_message makes it)."""
    return build_context(
        kind,
        lang=lang,
        cfg=event_config(world.event),
        person=world.lotte.person,
        recipient=world.lotte.person.email,
        recipient_name=world.lotte.person.name,
        participant=None,
        invitation=world.lotte,
        extra={},
        reply_address="aanmelden@wijkwijzer.example",
        has_calendar=False,
    )


# --- through the outbox, on both databases -------------------------------------------------


def test_queue_mail_stores_the_rendered_message(db: Session) -> None:
    event = make_event(db)
    person = make_person(db, "l.elamrani@zwaanshoek.example", "Lotte El Amrani")
    invitation, participant = add_invitation(db, event, person, batch="t", reason="test")
    row = queue_mail(
        db,
        key="test:invitation",
        kind=MailKind.INVITATION,
        event=event,
        person=person,
        participant=participant,
        invitation=invitation,
    )
    db.commit()
    assert row is not None and row.raw is not None
    parsed = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert parsed["Message-ID"] == row.message_id
    assert tokens.find_in_address(parsed["Reply-To"]) == invitation.token
    assert _has_part(parsed, "text/calendar")
    assert b"\r\n" in row.raw and b"\n" not in row.raw.replace(b"\r\n", b"")  # SMTP line ends


# --- preview command -----------------------------------------------------------------------


def test_preview_prints_a_sample_mail_and_writes_nothing(
    database_url: str, db: Session, tmp_path: Path
) -> None:
    from jobs.cli import app

    event = make_event(db)
    slug = event.slug
    db.commit()
    before = _row_counts(db)
    runner = CliRunner()
    result = runner.invoke(app, ["--database-url", database_url, "preview", slug, "invitation"])
    assert result.exit_code == 0, result.output
    assert 'To: "Wethouder J. Voorbeeld" <j.voorbeeld@gemeente.example>' in result.output
    assert "Beste Wethouder J. Voorbeeld," in result.output
    assert "[calendar part: method=REQUEST" in result.output
    assert "[attachment invite.ics: application/ics" in result.output

    english = runner.invoke(
        app, ["--database-url", database_url, "preview", slug, "waitlisted", "--lang", "en"]
    )
    assert english.exit_code == 0, english.output
    assert "you are number 3" in english.output

    out = tmp_path / "offer.eml"
    written = runner.invoke(
        app, ["--database-url", database_url, "preview", slug, "seat_offered", "--out", str(out)]
    )
    assert written.exit_code == 0, written.output
    parsed = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"].startswith("Er is een plaats vrijgekomen")
    assert _row_counts(db) == before


def test_preview_for_a_real_invitee_and_clear_errors(database_url: str, db: Session) -> None:
    from jobs.cli import app

    event = make_event(db)
    person = make_person(db, "a.morgan@harbourside.example", "Alex Morgan", language="en")
    invitation, _ = add_invitation(db, event, person, batch="t", reason="test")
    slug, token = event.slug, invitation.token
    db.commit()
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "--database-url",
            database_url,
            "preview",
            slug,
            "registration_confirmed",
            "--to",
            "A.Morgan@harbourside.example",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Dear Alex Morgan," in result.output
    assert f"[rsvp:{token}]" in result.output

    unknown_kind = runner.invoke(app, ["--database-url", database_url, "preview", slug, "bogus"])
    assert unknown_kind.exit_code == 2
    assert "unknown mail kind 'bogus'" in unknown_kind.output
    stranger = runner.invoke(
        app,
        [
            "--database-url",
            database_url,
            "preview",
            slug,
            "invitation",
            "--to",
            "nobody@example.org",
        ],
    )
    assert stranger.exit_code == 2
    assert "nobody with that e-mail address" in stranger.output


def _row_counts(db: Session) -> tuple[int, ...]:
    counts = tuple(
        db.scalar(select(func.count()).select_from(model)) or 0
        for model in (Person, Invitation, Participant, OutboundMessage)
    )
    db.rollback()  # end the read, which on SQLite holds the write lock (BEGIN IMMEDIATE)
    return counts


# --- helpers -------------------------------------------------------------------------------


def _part(msg: email.message.Message, content_type: str) -> EmailMessage:
    for part in msg.walk():
        if part.get_content_type() == content_type:
            assert isinstance(part, EmailMessage)
            return part
    raise AssertionError(f"no {content_type} part")


def _has_part(msg: email.message.Message, content_type: str) -> bool:
    return any(p.get_content_type() == content_type for p in msg.walk())


def _body(msg: email.message.Message) -> str:
    """The plain text without the footer."""
    return str(_part(msg, "text/plain").get_content()).split("\n--\n")[0]


def _html(msg: email.message.Message) -> str:
    return str(_part(msg, "text/html").get_content())
