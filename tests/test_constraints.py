"""The database itself refuses duplicates and impossible rows, on both engines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from db.engine import DatabaseNotReady, ensure_migrated, make_engine
from db.models import InboundMessage, Invitation, OutboundMessage, Participant, ParticipantStatus
from tests.factories import invite, make_event, make_person
from workflows.clock import now


def _fails(db: Session, build: Callable[[], object]) -> None:
    with pytest.raises(IntegrityError):
        db.add(build())
        db.flush()
    db.rollback()


def test_duplicate_token_is_refused(db: Session) -> None:
    event = make_event(db)
    invitation, _ = invite(db, event, "a@gemeente.example")
    other = make_person(db, "b@gemeente.example")
    token = invitation.token
    db.commit()
    _fails(db, lambda: Invitation(event_id=event.id, person_id=other.id, token=token))


def test_short_token_is_refused(db: Session) -> None:
    event = make_event(db)
    person = make_person(db, "a@gemeente.example")
    db.commit()
    _fails(db, lambda: Invitation(event_id=event.id, person_id=person.id, token="abc"))


def test_one_invitation_per_person_and_event(db: Session) -> None:
    event = make_event(db)
    invitation, _ = invite(db, event, "a@gemeente.example")
    person_id = invitation.person_id
    db.commit()
    _fails(db, lambda: Invitation(event_id=event.id, person_id=person_id, token="x" * 32))


def test_duplicate_message_id_is_refused(db: Session) -> None:
    db.add(InboundMessage(message_id="<same@x.example>", raw=b"1"))
    db.commit()
    _fails(db, lambda: InboundMessage(message_id="<same@x.example>", raw=b"2"))


def test_same_imap_uid_twice_is_refused(db: Session) -> None:
    db.add(InboundMessage(message_id="<a@x>", mailbox="INBOX", uidvalidity=7, uid=1))
    db.commit()
    _fails(db, lambda: InboundMessage(message_id="<b@x>", mailbox="INBOX", uidvalidity=7, uid=1))


def test_duplicate_outbox_key_is_refused(db: Session) -> None:
    def row(message_id: str) -> OutboundMessage:
        return OutboundMessage(
            idempotency_key="invitation:1",
            kind="invitation",
            recipient="a@b.example",
            message_id=message_id,
            raw=b"x",
        )

    db.add(row("<1@rsvpmail>"))
    db.commit()
    _fails(db, lambda: row("<2@rsvpmail>"))


def test_waitlisted_needs_a_position_and_positions_are_unique(db: Session) -> None:
    event = make_event(db)
    _, first = invite(db, event, "a@gemeente.example")
    _, second = invite(db, event, "b@gemeente.example")
    db.commit()
    first.status = ParticipantStatus.WAITLISTED
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()
    first.status, first.waitlist_seq = ParticipantStatus.WAITLISTED, 1
    second.status, second.waitlist_seq = ParticipantStatus.WAITLISTED, 1
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()


def test_offer_needs_an_expiry(db: Session) -> None:
    event = make_event(db)
    _, participant = invite(db, event, "a@gemeente.example")
    db.commit()
    participant.status = ParticipantStatus.OFFERED
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()
    participant.status, participant.offer_expires_at = ParticipantStatus.OFFERED, now()
    db.flush()


def test_unknown_status_string_is_refused_by_the_database(db: Session, engine: Engine) -> None:
    event = make_event(db)
    _, participant = invite(db, event, "a@gemeente.example")
    db.commit()
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text("UPDATE participants SET status = 'vip' WHERE id = :id"), {"id": participant.id}
        )


def test_unknown_status_is_refused_before_the_database(db: Session) -> None:
    event = make_event(db)
    _, participant = invite(db, event, "a@gemeente.example")
    participant.status = "vip"  # type: ignore[assignment]
    with pytest.raises(StatementError):
        db.flush()


def test_event_must_end_after_it_starts(db: Session) -> None:
    event = make_event(db)
    db.commit()
    event.ends_at = event.starts_at - timedelta(hours=1)
    with pytest.raises(IntegrityError):
        db.flush()


def test_emails_are_stored_lowercase(db: Session) -> None:
    from db.models import Person

    _fails(db, lambda: Person(email="Jan@Gemeente.example"))


def test_participant_per_person_is_unique(db: Session) -> None:
    event = make_event(db)
    _, participant = invite(db, event, "a@gemeente.example")
    person_id = participant.person_id
    db.commit()
    _fails(db, lambda: Participant(event_id=event.id, person_id=person_id))


def test_unmigrated_database_is_refused_with_a_clear_message(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(DatabaseNotReady, match="rsvpmail db upgrade"):
        ensure_migrated(engine)


def test_migrated_database_is_accepted(engine: Engine) -> None:
    ensure_migrated(engine)


def test_datetimes_come_back_aware_in_utc(db: Session) -> None:
    event = make_event(db)
    db.commit()
    db.expire_all()
    assert event.starts_at.utcoffset() == timedelta(0)
    assert event.starts_at.isoformat() == "2023-02-01T12:00:00+00:00"  # 13:00 in Amsterdam
