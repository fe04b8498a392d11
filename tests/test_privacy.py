"""Privacy: retention, export and forgetting, on SQLite and PostgreSQL.

The scenario is built the way the service builds it: invitations queued through the outbox
and marked sent through transitions, replies parsed from real RFC 5322 bytes by the inbound
pipeline (so the stored readings, audit reasons and organiser notices are the real ones), a
bounce, an unmatched message from a stranger, an unsubscription and a loop-brake counter.
The proofs then look at every text, JSON and bytes column of every table.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import pytest
from sqlalchemy import LargeBinary, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db.models import (
    AutoAnswerCount,
    Base,
    Event,
    InboundMessage,
    InboundStatus,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
    Person,
    Unsubscription,
)
from jobs.cli import app
from tests.factories import event_config, invite
from tests.mailfactory import ManualClock, World, bounce, deliver, reply
from workflows.errors import NotFound
from workflows.events import apply_event_config
from workflows.invitations import queue_invitations
from workflows.invitees import add_invitation
from workflows.privacy import (
    ANON_DOMAIN,
    anonymous_email,
    export_person,
    forget_person,
    purge_expired,
)
from workflows.seats import seats_taken
from workflows.transitions import transition

RAW_DAYS, PERSONAL_DAYS = 30, 365

JAN_TEXT = (
    "Ja, ik kom graag, deelsessie wonen, met mijn collega Karin Smit. "
    "Ik eet geen vlees, graag een vegetarische lunch."
)
PIET_TEXT = "Helaas kan ik niet komen; die middag vergadert de raad van Oostwoud-Polderland."
STRANGER_TEXT = "Mag ik ook komen? Ik hoorde erover van een collega. Groet, Henk Buitenstaander"


@dataclass(frozen=True)
class Someone:
    email: str
    name: str
    organisation: str
    role: str

    @property
    def secrets(self) -> list[str]:
        return [self.email, self.name, self.organisation, self.role]


JAN = Someone(
    "j.devries-ouwerkerk@zwijndrecht-proef.example",
    "Jan de Vries-Ouwerkerk",
    "Gemeente Zwijndrecht-Proef",
    "Wethouder Ruimtelijke Ordening Proefstad",
)
PIET = Someone(
    "p.bakker@oostwoud-polderland.example",
    "Pieternella Bakker-Zandbergen",
    "Gemeente Oostwoud-Polderland",
    "Wethouder Sociaal Domein Polderland",
)
LOTTE = Someone(
    "l.elamrani@nergenshuizen.example",
    "Lotte El Amrani-Vermeulen",
    "Gemeente Nergenshuizen",
    "Wethouder Onderwijs Nergenshuizen",
)
STRANGER_EMAIL = "h.buitenstaander@elders-ver-weg.example"


@dataclass
class Scenario:
    world: World
    clock: ManualClock
    participants: dict[str, Participant] = field(default_factory=dict)

    @property
    def db(self) -> Session:
        return self.world.db

    @property
    def event(self) -> Event:
        return self.world.event

    def after_end(self, days: int) -> datetime:
        return self.event.ends_at + timedelta(days=days, hours=1)


@pytest.fixture
def scenario(db: Session, clock: ManualClock) -> Scenario:
    return build_scenario(db, clock)


def build_scenario(db: Session, clock: ManualClock) -> Scenario:
    w = World(
        db,
        clock,
        raw_message_retention_days=RAW_DAYS,
        personal_data_retention_days=PERSONAL_DAYS,
    )
    s = Scenario(w, clock)
    for key, who in (("jan", JAN), ("piet", PIET), ("lotte", LOTTE)):
        _inv, s.participants[key] = invite(
            db, w.event, who.email, who.name, organisation=who.organisation, role=who.role
        )
    db.commit()
    queue_invitations(db, w.event, actor="organiser")
    db.commit()
    send_everything(db)
    for p in s.participants.values():
        assert p.invitation is not None
        transition(db, p.invitation, InvitationStatus.SENT, reason="sent")
    db.commit()

    clock.advance(days=1)
    jan = s.participants["jan"]
    w.say(jan, JAN_TEXT, from_name=JAN.name)
    w.say(s.participants["piet"], PIET_TEXT, from_name=PIET.name)
    lotte = s.participants["lotte"]
    assert lotte.invitation is not None
    deliver(db, bounce(recipient=LOTTE.email, original_token=lotte.invitation.token))
    deliver(db, reply(to_token=None, from_=STRANGER_EMAIL, text=STRANGER_TEXT))
    db.add(Unsubscription(person_id=s.participants["piet"].person_id, organiser=w.event.organiser))
    # The loop brake counts the answers sent to Jan today (the rules may have already).
    if db.get(AutoAnswerCount, (JAN.email, clock.at.date())) is None:
        db.add(AutoAnswerCount(sender=JAN.email, day=clock.at.date(), count=2))
    db.commit()
    fail_one_to(db, JAN.email)
    send_everything(db)
    return s


def send_everything(db: Session) -> None:
    """What the outbox job does, minus SMTP: every pending mail goes out."""
    pending = db.scalars(
        select(OutboundMessage).where(OutboundMessage.status == OutboundStatus.PENDING)
    ).all()
    for row in pending:
        transition(db, row, OutboundStatus.SENDING, reason="claimed", actor="worker-1")
        transition(db, row, OutboundStatus.SENT, reason="accepted by the SMTP server")
    db.commit()


def fail_one_to(db: Session, address: str) -> None:
    """A mail the receiving server refused, naming the address in its reply."""
    row = db.scalars(
        select(OutboundMessage).where(
            OutboundMessage.recipient == address, OutboundMessage.status == OutboundStatus.PENDING
        )
    ).first()
    assert row is not None, "the scenario expects a pending mail to fail"
    error = f"550 5.1.1 <{address}>: mailbox unavailable"
    transition(db, row, OutboundStatus.SENDING, reason="claimed", actor="worker-1")
    row.last_error = error
    transition(db, row, OutboundStatus.FAILED, reason=f"permanent failure: {error}")
    db.commit()


# --------------------------------------------------------------------------- looking everywhere


def every_stored_text(db: Session) -> list[tuple[str, str]]:
    """(table.column, text) for every text, JSON and bytes value in the database."""
    found: list[tuple[str, str]] = []
    for table in Base.metadata.sorted_tables:
        for row in db.execute(table.select()).mappings():
            for column in table.columns:
                value = row[column.name]
                if value is None:
                    continue
                where = f"{table.name}.{column.name}"
                if isinstance(column.type, LargeBinary) or isinstance(value, bytes):
                    found.extend((where, t) for t in _texts_of_message(bytes(value)))
                elif isinstance(value, dict | list):
                    found.append((where, json.dumps(value, ensure_ascii=False)))
                elif isinstance(value, str):
                    found.append((where, value))
    return found


def _texts_of_message(raw: bytes) -> list[str]:
    """The bytes as they are and decoded (base64/quoted-printable parts, headers)."""
    texts = [raw.decode("utf-8", "replace")]
    msg = message_from_bytes(raw, policy=email_policy.default)
    for part in msg.walk():
        texts.extend(str(v) for v in part.values())
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode("utf-8", "replace"))
    return texts


def leaks(db: Session, secrets: list[str]) -> list[str]:
    db.expire_all()
    return [
        f"{where} contains {secret!r}"
        for where, text in every_stored_text(db)
        for secret in secrets
        if secret.lower() in text.lower()
    ]


def typed_phrases() -> list[str]:
    """Distinctive pieces of what people typed (any of them surviving is a leak)."""
    return ["Karin Smit", *typed_only()]


def typed_only() -> list[str]:
    """Typed words that are nobody's registered name (Karin Smit becomes a Person row)."""
    return [
        "vegetarische lunch",
        "vergadert de raad",
        "Henk Buitenstaander",
        "hoorde erover van een collega",
    ]


def everyone_secrets() -> list[str]:
    return [*JAN.secrets, *PIET.secrets, *LOTTE.secrets, STRANGER_EMAIL, *typed_phrases()]


# --------------------------------------------------------------------------- the scenario is real


def test_scenario_holds_the_personal_data_the_proofs_look_for(scenario: Scenario) -> None:
    """Guards the proofs below: if the scenario stopped storing these, they would prove nothing."""
    found = leaks(scenario.db, everyone_secrets())
    for secret in everyone_secrets():
        assert any(repr(secret) in line for line in found), f"scenario never stores {secret!r}"
    jan = scenario.world.status(scenario.participants["jan"])
    assert jan is ParticipantStatus.REGISTERED
    assert scenario.world.companions(scenario.participants["jan"])


# --------------------------------------------------------------------------- retention


def test_nothing_happens_before_the_raw_period_ends(scenario: Scenario) -> None:
    db = scenario.db
    scenario.clock.set(scenario.after_end(RAW_DAYS - 2))
    report = purge_expired(db)
    db.commit()
    # Only the loop-brake counters (kept for a month, not per event) have expired.
    assert report.changed == report.auto_answer_counts_deleted
    assert report.events_raw_expired == []
    assert db.scalar(select(InboundMessage.id).where(InboundMessage.raw.is_(None))) is None


def test_raw_purge_drops_bytes_and_typed_text_but_keeps_rows_and_people(
    scenario: Scenario,
) -> None:
    db = scenario.db
    inbound_before = sorted(db.scalars(select(InboundMessage.message_id)))
    scenario.clock.set(scenario.after_end(RAW_DAYS))
    report = purge_expired(db)
    db.commit()

    assert report.events_raw_expired == [scenario.event.slug]
    assert report.events_personal_expired == []
    assert report.inbound_raw_purged == len(inbound_before)
    assert report.unresolved_raw_purged >= 1  # the stranger's message was still in review
    assert sorted(db.scalars(select(InboundMessage.message_id))) == inbound_before
    for row in db.scalars(select(InboundMessage)):
        assert row.raw is None and row.subject == ""
        assert (row.classification or {}).get("reply_text", "") == ""
    assert db.scalar(select(OutboundMessage.id).where(OutboundMessage.raw.is_not(None))) is None
    # Typed words are gone everywhere; who was invited is not (that is the next period).
    assert leaks(db, typed_only()) == []
    assert db.scalar(select(Person).where(Person.email == JAN.email)) is not None
    jan_mail = db.scalar(select(InboundMessage).where(InboundMessage.from_address == JAN.email))
    assert jan_mail is not None and jan_mail.kind == "accept"


def test_purge_leaves_no_personal_data_anywhere(scenario: Scenario) -> None:
    db = scenario.db
    seats_before = seats_taken(db, scenario.event)
    statuses_before = sorted(
        str(s) for s in db.scalars(select(Participant.status).order_by(Participant.id))
    )
    people_before = len(db.scalars(select(Person.id)).all())
    scenario.clock.set(scenario.after_end(PERSONAL_DAYS))

    report = purge_expired(db)
    db.commit()

    assert leaks(db, everyone_secrets()) == []
    assert report.events_personal_expired == [scenario.event.slug]
    assert report.persons_anonymised == people_before
    # Counts survive: seats, statuses, people, the unsubscription, the messages.
    db.expire_all()
    assert seats_taken(db, scenario.event) == seats_before
    assert (
        sorted(str(s) for s in db.scalars(select(Participant.status).order_by(Participant.id)))
        == statuses_before
    )
    people = db.scalars(select(Person)).all()
    assert len(people) == people_before
    assert all(p.anonymised_at is not None for p in people)
    assert all(p.email == anonymous_email(p.id) for p in people)
    assert len(db.scalars(select(Unsubscription.id)).all()) == 1
    assert db.scalars(select(AutoAnswerCount)).all() == []
    assert all(i.token.startswith("anonymised") for i in db.scalars(select(Invitation)))
    kinds = db.scalars(select(InboundMessage.kind).order_by(InboundMessage.id)).all()
    assert "accept" in kinds and "bounce" in kinds


def test_purge_is_idempotent(scenario: Scenario) -> None:
    db = scenario.db
    scenario.clock.set(scenario.after_end(PERSONAL_DAYS))
    first = purge_expired(db)
    db.commit()
    dump = sorted(every_stored_text(db))
    scenario.clock.advance(days=1)
    second = purge_expired(db)
    db.commit()
    db.expire_all()
    assert first.changed > 0
    assert second.changed == 0
    assert sorted(every_stored_text(db)) == dump


def test_someone_invited_to_a_later_event_is_kept(scenario: Scenario) -> None:
    db = scenario.db
    scenario.clock.advance(days=60)  # the next edition is set up after this one
    later = later_event(db)
    piet = db.get_one(Person, scenario.participants["piet"].person_id)
    later_invitation, _ = add_invitation(db, later, piet, batch="2024", reason="test setup")
    later_token = later_invitation.token
    old_invitation = db.get_one(Invitation, scenario.participants["piet"].invitation_id)
    old_token = old_invitation.token
    db.commit()
    scenario.clock.set(scenario.after_end(PERSONAL_DAYS))

    report = purge_expired(db)
    db.commit()
    db.expire_all()

    assert report.persons_kept == 1
    kept = db.get_one(Person, piet.id)
    assert (kept.email, kept.name, kept.anonymised_at) == (PIET.email, PIET.name, None)
    assert db.get_one(Invitation, later_invitation.id).token == later_token
    # The old event's rows about them are scrubbed all the same.
    assert db.get_one(Invitation, old_invitation.id).token != old_token
    assert leaks(db, [PIET_TEXT[:40]]) == []
    assert (
        db.scalar(select(InboundMessage).where(InboundMessage.from_address == PIET.email)) is None
    )
    # Everyone else is gone.
    assert leaks(db, [*JAN.secrets, *LOTTE.secrets, *typed_phrases()]) == []


def later_event(db: Session) -> Event:
    tz = UTC
    cfg = event_config(
        slug="wethouders-in-de-wijk-2024",
        starts_at=datetime(2024, 2, 7, 12, 0, tzinfo=tz),
        ends_at=datetime(2024, 2, 7, 16, 30, tzinfo=tz),
        registration_deadline=datetime(2024, 1, 31, 22, 59, tzinfo=tz),
    )
    event, _ = apply_event_config(db, cfg)
    db.flush()
    return event


def test_unmatched_mail_lives_as_long_as_the_events_open_when_it_came(
    scenario: Scenario,
) -> None:
    db = scenario.db
    stranger = db.scalar(
        select(InboundMessage).where(InboundMessage.from_address == STRANGER_EMAIL)
    )
    assert stranger is not None and stranger.event_id is None
    assert stranger.status is InboundStatus.REVIEW
    scenario.clock.set(scenario.after_end(RAW_DAYS))
    purge_expired(db)
    db.commit()
    db.refresh(stranger)
    assert stranger.raw is None and stranger.from_address == STRANGER_EMAIL
    scenario.clock.set(scenario.after_end(PERSONAL_DAYS))
    purge_expired(db)
    db.commit()
    db.refresh(stranger)
    assert stranger.from_address == "" and stranger.classification is not None
    assert stranger.classification.get("anonymised") is True


def test_old_loop_brake_counters_are_deleted(db: Session, clock: ManualClock) -> None:
    today = clock.at.date()
    db.add(AutoAnswerCount(sender="oud@example.org", day=today - timedelta(days=40), count=3))
    db.add(AutoAnswerCount(sender="nieuw@example.org", day=today, count=1))
    db.commit()
    report = purge_expired(db)
    db.commit()
    assert report.auto_answer_counts_deleted == 1
    assert db.scalars(select(AutoAnswerCount.sender)).all() == ["nieuw@example.org"]


# --------------------------------------------------------------------------- export


def test_export_holds_everything_about_the_person(scenario: Scenario) -> None:
    db = scenario.db
    jan = scenario.participants["jan"]
    assert jan.invitation is not None

    data = export_person(db, JAN.email.upper())

    json.dumps(data)  # must be JSON as it is
    assert data["person"]["email"] == JAN.email
    assert data["person"]["organisation"] == JAN.organisation
    assert [i["token"] for i in data["invitations"]] == [jan.invitation.token]
    (participation,) = data["participations"]
    assert participation["status"] == "registered"
    assert participation["session"]["key"] == "wonen"
    assert [c["name"] for c in participation["companions"]] == ["Karin Smit"]
    (message,) = data["inbound_messages"]
    assert message["from_address"] == JAN.email and "Karin Smit" in message["reply_text"]
    assert "raw_base64" not in message
    sent_to_jan = db.scalars(
        select(OutboundMessage.kind).where(OutboundMessage.person_id == jan.person_id)
    ).all()
    assert sorted(m["kind"] for m in data["outbound_messages"]) == sorted(sent_to_jan)
    assert all(m["subject"] for m in data["outbound_messages"])
    assert {"registered", "sent", "failed"} <= {a["new_status"] for a in data["audit"]}
    counter = db.get_one(AutoAnswerCount, (JAN.email, scenario.clock.at.date()))
    assert data["auto_answer_counts"] == [{"day": counter.day.isoformat(), "count": counter.count}]


def test_export_with_raw_gives_the_original_bytes(scenario: Scenario) -> None:
    db = scenario.db
    data = export_person(db, JAN.email, include_raw=True)
    (message,) = data["inbound_messages"]
    stored = db.scalar(select(InboundMessage.raw).where(InboundMessage.id == message["id"]))
    assert base64.b64decode(message["raw_base64"]) == stored


def test_export_of_an_unknown_address_says_so(db: Session) -> None:
    with pytest.raises(NotFound, match="no person"):
        export_person(db, "niemand@example.org")


# --------------------------------------------------------------------------- forget


def test_forget_erases_the_person_now_and_keeps_the_seat(scenario: Scenario) -> None:
    db = scenario.db
    w = scenario.world
    jan = scenario.participants["jan"]
    # A question right before: a forwarded copy to the organiser and an answer to Jan wait.
    w.say(jan, "Nog een vraag: is er parkeergelegenheid bij het Huis van de Wijk?")
    pending = db.scalars(
        select(OutboundMessage).where(OutboundMessage.status == OutboundStatus.PENDING)
    ).all()
    assert pending, "the question should have queued mail"
    seats_before = seats_taken(db, w.event)

    report = forget_person(db, JAN.email, actor="organiser:avg-verzoek")
    db.commit()

    assert leaks(db, [JAN.email, JAN.name, "vegetarische lunch", "parkeergelegenheid"]) == []
    forgotten = db.get_one(Person, jan.person_id)
    assert (forgotten.organisation, forgotten.role) == ("", "")
    assert forgotten.email.endswith("@" + ANON_DOMAIN)
    assert w.status(jan) is ParticipantStatus.REGISTERED
    assert seats_taken(db, w.event) == seats_before
    assert report.outbound_suppressed == len(pending)
    for row in pending:
        db.refresh(row)
        assert row.status is OutboundStatus.SUPPRESSED and row.raw is None
    assert db.get(AutoAnswerCount, (JAN.email, scenario.clock.at.date())) is None
    # Others are untouched.
    assert leaks(db, [PIET.email]) != []
    with pytest.raises(NotFound):
        forget_person(db, JAN.email, actor="organiser")


# --------------------------------------------------------------------------- logs


def test_logs_never_carry_addresses_names_or_bodies(
    scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    db = scenario.db
    caplog.clear()
    caplog.set_level(logging.DEBUG)  # every logger, SQLAlchemy's included
    export_person(db, JAN.email, include_raw=True)
    forget_person(db, PIET.email, actor="organiser")
    scenario.clock.set(scenario.after_end(PERSONAL_DAYS))
    purge_expired(db)
    db.commit()

    assert caplog.records, "the privacy rules should log what they did"
    logged = "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records
    ).lower()
    for secret in everyone_secrets():
        assert secret.lower() not in logged
    assert "@" not in logged


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def cli(db: Session, database_url: str) -> Iterator[Any]:
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        db.rollback()  # end the test's transaction: on SQLite it would hold the write lock
        return runner.invoke(app, ["--database-url", database_url, *args], input=input)

    yield run


def test_cli_purge_dry_run_changes_nothing(scenario: Scenario, cli: Any) -> None:
    db = scenario.db
    scenario.clock.set(scenario.after_end(PERSONAL_DAYS))
    before = sorted(every_stored_text(db))
    people = len(db.scalars(select(Person.id)).all())
    result = cli("privacy", "purge", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and f"persons anonymised: {people}" in result.output
    db.expire_all()
    assert sorted(every_stored_text(db)) == before
    result = cli("privacy", "purge")
    assert result.exit_code == 0, result.output
    assert leaks(db, everyone_secrets()) == []


def test_cli_export_prints_json_or_writes_a_file(
    scenario: Scenario, cli: Any, tmp_path: Any
) -> None:
    result = cli("privacy", "export", JAN.email)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["person"]["name"] == JAN.name
    target = tmp_path / "jan.json"
    result = cli("privacy", "export", JAN.email, "--output", str(target))
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8"))["person"]["email"] == JAN.email
    result = cli("privacy", "export", "niemand@example.org")
    assert result.exit_code == 2 and "no person" in result.output


def test_cli_forget_asks_first(scenario: Scenario, cli: Any) -> None:
    db = scenario.db
    result = cli("privacy", "forget", JAN.email, input="n\n")
    # A deliberate no is no error, but nothing was erased: exit 1 (as an aborted question),
    # so that `forget X && record-erasure X` records nothing.
    assert result.exit_code == 1, result.output
    assert result.stdout.rstrip().endswith("nothing changed")
    assert "error" not in result.output
    assert db.scalar(select(Person).where(Person.email == JAN.email)) is not None
    result = cli("privacy", "forget", JAN.email, "--yes", "--by", "organiser")
    assert result.exit_code == 0, result.output
    assert db.scalar(select(Person).where(Person.email == JAN.email)) is None
    assert leaks(db, [JAN.email, JAN.name]) == []


def test_cli_forget_says_what_stays_for_the_persons_status(scenario: Scenario, cli: Any) -> None:
    db = scenario.db
    slug = scenario.event.slug
    jan, piet = scenario.participants["jan"], scenario.participants["piet"]
    assert (jan.status, piet.status) == (ParticipantStatus.REGISTERED, ParticipantStatus.DECLINED)
    registered = cli("privacy", "forget", JAN.email, "--yes").stdout
    assert "participant rows kept anonymously: 1\n" in registered
    assert f"{slug}: registered, the seat stays taken" in registered
    declined = cli("privacy", "forget", PIET.email, "--yes").stdout
    assert f"{slug}: declined, holds no seat" in declined
    assert "seat stays taken" not in declined and "seats stay taken" not in declined

    lotte = scenario.participants["lotte"]  # cancelled after registering
    db.expire_all()
    transition(db, lotte, ParticipantStatus.REGISTERED, reason="test", actor="test")
    transition(db, lotte, ParticipantStatus.CANCELLED, reason="test", actor="test")
    db.commit()
    cancelled = cli("privacy", "forget", LOTTE.email, "--yes").stdout
    assert f"{slug}: cancelled, holds no seat" in cancelled
    assert "seat" not in cancelled.replace("holds no seat", "")


def test_retention_dates_follow_the_config(db: Session, clock: ManualClock) -> None:
    from workflows.privacy import retention_of

    w = World(db, clock, raw_message_retention_days=7, personal_data_retention_days=3)
    window = retention_of(w.event)
    # Raw bytes never outlive the personal data they contain.
    assert window.raw_until == w.event.ends_at + timedelta(days=3)
    assert window.personal_until == w.event.ends_at + timedelta(days=3)
