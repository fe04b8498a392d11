"""The whole registration, end to end, against the local mail stack.

The real event (capacity cut to 3) and seven people: invitations go out over SMTP and are
read back over IMAP; the invitees answer as real mail clients do (to the Reply-To address,
quoting the original); `Service.run_once()` is the step function and a hand-set clock walks
the timeline from the invitations to the follow-ups. After every step the mailboxes are
compared with what the step should have delivered — nothing early, nothing twice, nothing
else — and at the end the organiser's inbox must be empty (every reply filed).
"""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Event, InboundMessage, InboundStatus, Participant, ParticipantStatus, Person
from devmail import MailStack
from jobs.demo import replies
from jobs.service import Service
from jobs.settings import ImapSettings, ServiceSettings, SmtpSettings
from tests.factories import make_event
from workflows import clock
from workflows.attendance import listed_from_options, mark_attendance
from workflows.invitations import queue_invitations
from workflows.invitees import add_invitation

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AMS = ZoneInfo("Europe/Amsterdam")
ORGANISER = "aanmelden@wijkwijzer.example"  # the event's reply address: the service reads it
CONTACT = "marieke.devries@wijkwijzer.example"  # the event's contact: organiser notices
ORGANISER_FOLDERS = ("INBOX", "Processed", "Review", "Quarantine")
PS = ParticipantStatus


@dataclass(frozen=True)
class Who:
    name: str
    email: str
    language: str = "nl"

    @property
    def sender(self) -> tuple[str, str]:
        return (self.name, self.email)


ANNA = Who("Anna de Boer", "a.deboer@zwaanshoek.example")
BART = Who("Bart Jansen", "b.jansen@oosterdijk.example")
KARIN = Who("Karin Smit", "k.smit@oosterdijk.example")  # Bart's colleague, not invited
CEES = Who("Cees Visser", "c.visser@leidenvaart.example")
DEAN = Who("Dean Walker", "d.walker@hoogmolen.example", "en")
EVA = Who("Eva Mulder", "e.mulder@bergveld.example")
FLOOR = Who("Floor Bakker", "f.bakker@westerkamp.example")
INVITEES = (ANNA, BART, CEES, DEAN, EVA, FLOOR)
PEOPLE = (*INVITEES, KARIN)


class ManualClock:
    """The service's clock, moved only by the test."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def set(self, local: datetime) -> None:
        assert local.tzinfo is not None
        assert local >= self.at, "the timeline only moves forward"
        self.at = local.astimezone(UTC)


def local(day: int, month: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2023, month, day, hour, minute, second, tzinfo=AMS)


@pytest.fixture
def manual_clock() -> Iterator[ManualClock]:
    manual = ManualClock(local(9, 1, 9).astimezone(UTC))
    previous = clock.set_clock(manual)
    yield manual
    clock.set_clock(previous)


# -- the mail stack, seen from the outside ------------------------------------------------


@dataclass
class Mailboxes:
    stack: MailStack

    def kinds(self) -> Counter[tuple[str, str]]:
        """(mailbox, kind) of every message each person and the organiser hold."""
        found: Counter[tuple[str, str]] = Counter()
        for who in PEOPLE:
            found.update((who.email, kind) for _, kind in self._kinds_in(who.email, ("INBOX",)))
        for address in (CONTACT, ORGANISER):
            found.update(
                (f"{address}/{folder}", kind)
                for folder, kind in self._kinds_in(address, ORGANISER_FOLDERS)
            )
        return found

    def _kinds_in(self, address: str, folders: tuple[str, ...]) -> Iterator[tuple[str, str]]:
        """(folder, kind) per message; replies from people carry no kind: "reply"."""
        with self.stack.mailbox(address) as box:
            existing = {info.name for info in box.folder.list()}
            for folder in folders:
                if folder not in existing:
                    continue
                box.folder.set(folder)
                for msg in box.fetch(headers_only=True, mark_seen=False, bulk=True):
                    yield folder, msg.headers.get("x-rsvpmail-kind", ("reply",))[0]

    def messages(self, address: str) -> list[Message]:
        with self.stack.mailbox(address) as box:
            return [
                email.message_from_bytes(m.obj.as_bytes(), policy=email.policy.default)
                for m in box.fetch(mark_seen=False)
            ]

    def latest(self, who: Who, kind: str) -> Message:
        found = [m for m in self.messages(who.email) if _kind(m) == kind]
        assert found, f"{who.email} has no {kind} mail"
        return found[-1]


def _kind(message: Message) -> str:
    return str(message.get("X-Rsvpmail-Kind", "unknown"))


@dataclass
class Timeline:
    """The test's hands: the organiser's actions, the invitees' replies, the service's steps."""

    stack: MailStack
    service: Service
    sessions: sessionmaker[Session]
    clock: ManualClock
    event_id: int
    boxes: Mailboxes
    seen: Counter[tuple[str, str]]
    replies_sent: int = 0

    def step(self, at: datetime, **expected: int) -> None:
        """Move the clock to `at`, run every job once, and check that exactly `expected`
        arrived: keys are `<person>__<kind>` (`contact`/`organiser_<folder>` for those)."""
        self.clock.set(at)
        self.service.run_once()
        now_seen = self.boxes.kinds()
        arrived = now_seen - self.seen
        gone = self.seen - now_seen
        self.seen = now_seen
        assert not gone, f"mail disappeared at {at}: {gone}"
        assert arrived == self._expected(expected), f"at {at:%d %b %H:%M}"
        assert self.stack.message_count(ORGANISER) == 0, "a reply was left in the inbox"

    def _expected(self, expected: dict[str, int]) -> Counter[tuple[str, str]]:
        names = {who.name.split()[0].lower(): who.email for who in PEOPLE}
        names["contact"] = f"{CONTACT}/INBOX"
        for folder in ORGANISER_FOLDERS:
            names[f"organiser_{folder.lower()}"] = f"{ORGANISER}/{folder}"
        result: Counter[tuple[str, str]] = Counter()
        for key, count in expected.items():
            who, _, kind = key.partition("__")
            result[(names[who], kind)] = count
        return result

    def reply(self, who: Who, to_kind: str, text: str, client: str = "gmail") -> None:
        """`who` answers their latest `to_kind` mail, as `client` would, over SMTP."""
        original = self.boxes.latest(who, to_kind)
        build = {"gmail": replies.gmail, "outlook": replies.outlook, "apple": replies.apple,
                 "english": replies.english}[client]  # fmt: skip
        raw = build(original, who.sender, clock.now().astimezone(AMS), text)
        to = replies.reply_address(original)
        assert to.startswith("aanmelden+"), f"replies go to the tokened Reply-To, not {to}"
        with smtplib.SMTP(self.stack.smtp_host, self.stack.smtp_port, timeout=10) as smtp:
            smtp.sendmail(who.email, [to], raw)
        self.replies_sent += 1

    def status(self, who: Who) -> ParticipantStatus:
        with self.sessions() as db:
            return db.scalars(
                select(Participant.status)
                .join(Person, Person.id == Participant.person_id)
                .where(Participant.event_id == self.event_id, Person.email == who.email)
            ).one()

    def statuses(self) -> dict[str, ParticipantStatus]:
        return {who.name.split()[0]: self.status(who) for who in PEOPLE if self._known(who)}

    def _known(self, who: Who) -> bool:
        with self.sessions() as db:
            return db.scalar(select(Person.id).where(Person.email == who.email)) is not None


def _settings(stack: MailStack) -> ServiceSettings:
    return ServiceSettings(
        imap=ImapSettings(
            host=stack.imap_host,
            port=stack.imap_port,
            user=ORGANISER,
            password=stack.password,
            timeout=10,
        ),
        smtp=SmtpSettings(host=stack.smtp_host, port=stack.smtp_port, timeout=10),
    )


@pytest.fixture
def timeline(
    engine: Engine,
    sessions: sessionmaker[Session],
    fresh_mailstack: MailStack,
    manual_clock: ManualClock,
) -> Timeline:
    with sessions() as db, db.begin():
        event = make_event(db, capacity=3)
        for who in INVITEES:
            person = Person(email=who.email, name=who.name, language=who.language)
            db.add(person)
            db.flush()
            add_invitation(db, event, person, batch="eerste-ronde", reason="test setup")
        assert event.reply_address == ORGANISER and event.contact_email == CONTACT
        event_id = event.id
    boxes = Mailboxes(fresh_mailstack)
    service = Service(settings=_settings(fresh_mailstack), engine=engine, name="e2e")
    return Timeline(fresh_mailstack, service, sessions, manual_clock, event_id, boxes,
                    seen=boxes.kinds())  # fmt: skip


def test_the_whole_timeline_delivers_every_mail_once_at_its_moment(timeline: Timeline) -> None:
    t = timeline
    P = PS

    # 9 January: the organiser sends the invitations; nothing is sent before the service runs.
    with t.sessions() as db, db.begin():
        event = db.get_one(Event, t.event_id)
        assert len(queue_invitations(db, event, batch="eerste-ronde")) == len(INVITEES)
    t.step(local(9, 1, 9, 1), **{f"{w.name.split()[0].lower()}__invitation": 1 for w in INVITEES})

    # 10 January: the answers, each from another mail client.
    t.reply(ANNA, "invitation", "Ja, ik kom graag! Deelsessie wonen.", "gmail")
    t.reply(BART, "invitation",
            "Ja, ik kom, deelsessie werk, met mijn collega Karin Smit (k.smit@oosterdijk.example).",
            "outlook")  # fmt: skip
    t.reply(CEES, "invitation", "Ja, ik kom graag. Doe mij maar de deelsessie onderwijs.", "apple")
    t.reply(DEAN, "invitation", "Yes, I'd love to come. I'll join the housing session.", "english")
    t.reply(EVA, "invitation", "Helaas kan ik niet, ik zit die middag in de raad.", "outlook")
    t.step(
        local(10, 1, 10),
        anna__registration_confirmed=1,
        bart__registration_confirmed=1,
        karin__companion_confirmed=1,
        cees__waitlisted=1,
        dean__waitlisted=1,
        eva__declined_ack=1,
        organiser_processed__reply=5,
    )
    assert t.statuses() == {
        "Anna": P.REGISTERED, "Bart": P.REGISTERED, "Karin": P.REGISTERED,
        "Cees": P.WAITLISTED, "Dean": P.WAITLISTED, "Eva": P.DECLINED, "Floor": P.INVITED,
    }  # fmt: skip

    # 12 January: Anna cancels; the seat goes to the first on the waitlist, Cees.
    t.reply(ANNA, "registration_confirmed",
            "Helaas moet ik mij toch afmelden voor 1 februari.", "gmail")  # fmt: skip
    t.step(
        local(12, 1, 11),
        anna__cancellation_confirmed=1,
        cees__seat_offered=1,
        organiser_processed__reply=1,
    )
    assert (t.status(ANNA), t.status(CEES), t.status(DEAN)) == (
        P.CANCELLED, P.OFFERED, P.WAITLISTED,
    )  # fmt: skip

    # 13 January: Cees takes the seat, well before the offer expires.
    t.reply(CEES, "seat_offered", "Ja, graag! Ik neem de plek in.", "apple")
    t.step(local(13, 1, 9), cees__registration_confirmed=1, organiser_processed__reply=1)
    assert t.status(CEES) is P.REGISTERED
    t.step(local(16, 1, 12))  # the offer's expiry moment passes: nothing left to expire

    # 20 January 09:00: the nudge to whoever has not answered (Floor), not a second early.
    t.step(local(20, 1, 8, 59, 59))
    t.step(local(20, 1, 9, 0, 1), floor__nudge_unanswered=1)
    t.step(local(20, 1, 15))

    # 25 January 09:00: the 7-day reminder to the registered (companion included).
    t.step(local(25, 1, 8, 59, 59))
    t.step(local(25, 1, 9, 0, 1), bart__reminder=1, karin__reminder=1, cees__reminder=1)
    t.step(local(25, 1, 12))

    # 25 January 23:59: registration closes; the contact person gets the summary once.
    t.step(local(25, 1, 23, 58))
    t.step(local(26, 1, 0, 0, 30), contact__organiser_notice=1)

    # 31 January 09:00: the 1-day reminder, once.
    t.step(local(31, 1, 8, 59, 59))
    t.step(local(31, 1, 9, 0, 1), bart__reminder=1, karin__reminder=1, cees__reminder=1)
    t.step(local(31, 1, 17))

    # 1 February, after the event: the organiser marks attendance (Karin did not come).
    t.step(local(1, 2, 18))
    with t.sessions() as db, db.begin():
        present = listed_from_options([BART.email, CEES.email], "attendance list")
        mark_attendance(db, db.get_one(Event, t.event_id), present, absent_rest=True,
                        actor="organiser:test")  # fmt: skip
    assert (t.status(BART), t.status(CEES), t.status(KARIN)) == (P.ATTENDED, P.ATTENDED, P.NO_SHOW)

    # 2 February 10:00: the follow-ups, the day after; none to those who never answered.
    t.step(local(2, 2, 9, 59, 59))
    t.step(
        local(2, 2, 10, 0, 1),
        bart__followup_attended=1,
        cees__followup_attended=1,
        karin__followup_absent=1,
        anna__followup_absent=1,
        dean__followup_absent=1,
        eva__followup_absent=1,
    )
    t.step(local(3, 2, 12))

    # The whole history, per mailbox: each mail exactly once, and nothing else.
    assert t.seen == t._expected({
        "anna__invitation": 1, "anna__registration_confirmed": 1,
        "anna__cancellation_confirmed": 1, "anna__followup_absent": 1,
        "bart__invitation": 1, "bart__registration_confirmed": 1, "bart__reminder": 2,
        "bart__followup_attended": 1,
        "karin__companion_confirmed": 1, "karin__reminder": 2, "karin__followup_absent": 1,
        "cees__invitation": 1, "cees__waitlisted": 1, "cees__seat_offered": 1,
        "cees__registration_confirmed": 1, "cees__reminder": 2, "cees__followup_attended": 1,
        "dean__invitation": 1, "dean__waitlisted": 1, "dean__followup_absent": 1,
        "eva__invitation": 1, "eva__declined_ack": 1, "eva__followup_absent": 1,
        "floor__invitation": 1, "floor__nudge_unanswered": 1,
        "contact__organiser_notice": 1,
        "organiser_processed__reply": t.replies_sent,
    })  # fmt: skip
    with t.sessions() as db:
        inbound = Counter(db.scalars(select(InboundMessage.status)))
    assert inbound == {InboundStatus.PROCESSED: t.replies_sent}
