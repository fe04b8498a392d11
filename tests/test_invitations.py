"""Invitation batches: who gets queued, that nobody is invited twice, and the follow-ups."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    AuditEntry,
    Event,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
    Unsubscription,
)
from tests.factories import invite, make_event, make_person
from workflows.errors import RsvpError
from workflows.invitations import queue_invitations, summarise_selection
from workflows.invitees import add_invitation
from workflows.sending import claim_due, mark_failed, mark_sent
from workflows.tokens import plus_address


def _invite_batch(db: Session, event: Event, batch: str, count: int) -> list[Invitation]:
    invitations = []
    for i in range(count):
        person = make_person(db, f"wethouder{i}@{batch}.example", f"Wethouder {batch} {i}")
        invitation, _ = add_invitation(db, event, person, batch=batch, reason="test setup")
        invitations.append(invitation)
    return invitations


def _outbox_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(OutboundMessage)) or 0


def test_queues_each_pending_invitation_once_and_marks_it_queued(db: Session) -> None:
    event = make_event(db)
    invitations = _invite_batch(db, event, "eerste-ronde", 4)

    rows = queue_invitations(db, event, batch=None, only=None)
    again = queue_invitations(db, event, batch=None, only=None)

    assert again == []
    assert len(rows) == _outbox_count(db) == 4
    assert {r.idempotency_key for r in rows} == {f"invitation:{i.id}" for i in invitations}
    assert all(i.status == InvitationStatus.QUEUED for i in invitations)
    assert all(r.kind == "invitation" and r.status == OutboundStatus.PENDING for r in rows)
    audits = db.scalars(
        select(AuditEntry).where(
            AuditEntry.machine == "invitation", AuditEntry.new_status == "queued"
        )
    ).all()
    assert len(audits) == 4


def test_the_queued_mail_is_addressed_to_the_invitee_with_the_token(db: Session) -> None:
    event = make_event(db)
    invitation, _ = invite(db, event, "Femke.Visser@Oosterdijk.example", "Femke Visser")

    [row] = queue_invitations(db, event, batch=None, only=None)

    assert row.recipient == "femke.visser@oosterdijk.example"
    assert row.raw is not None
    msg = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert plus_address(event.reply_address, invitation.token) in str(msg["Reply-To"])
    assert "femke.visser@oosterdijk.example" in str(msg["To"]).lower()


def test_batch_selects_only_that_batch(db: Session) -> None:
    event = make_event(db)
    first = _invite_batch(db, event, "eerste-ronde", 3)
    second = _invite_batch(db, event, "tweede-ronde", 2)

    rows = queue_invitations(db, event, batch="tweede-ronde", only=None)

    assert len(rows) == 2
    assert all(i.status == InvitationStatus.QUEUED for i in second)
    assert all(i.status == InvitationStatus.PENDING for i in first)


def test_limit_queues_in_chunks_until_done(db: Session) -> None:
    event = make_event(db)
    _invite_batch(db, event, "eerste-ronde", 7)

    chunks = []
    while rows := queue_invitations(db, event, batch=None, only=None, limit=3):
        chunks.append(len(rows))

    assert chunks == [3, 3, 1]
    assert _outbox_count(db) == 7


def test_only_selects_the_named_addresses_case_insensitively(db: Session) -> None:
    event = make_event(db)
    invitations = _invite_batch(db, event, "eerste-ronde", 3)

    rows = queue_invitations(db, event, batch=None, only=["  WETHOUDER1@eerste-ronde.example"])

    assert [r.recipient for r in rows] == ["wethouder1@eerste-ronde.example"]
    assert [i.status for i in invitations] == [
        InvitationStatus.PENDING,
        InvitationStatus.QUEUED,
        InvitationStatus.PENDING,
    ]


def test_unknown_batch_or_address_is_refused_with_what_exists(db: Session) -> None:
    event = make_event(db)
    _invite_batch(db, event, "eerste-ronde", 1)

    with pytest.raises(RsvpError, match=r"no invitations in batch 'derde'.*'eerste-ronde'"):
        queue_invitations(db, event, batch="derde", only=None)
    with pytest.raises(RsvpError, match=r"not invited.*iemand@elders\.example"):
        queue_invitations(db, event, batch=None, only=["iemand@elders.example"])
    assert _outbox_count(db) == 0


def test_unsubscribed_people_are_left_out_and_counted(db: Session) -> None:
    event = make_event(db)
    invitations = _invite_batch(db, event, "eerste-ronde", 3)
    db.add(Unsubscription(person_id=invitations[0].person_id, organiser=event.organiser))
    db.flush()

    before = summarise_selection(db, event, batch=None, only=None)
    rows = queue_invitations(db, event, batch=None, only=None)
    after = summarise_selection(db, event, batch=None, only=None)

    assert (before.to_queue, before.already_invited, before.unsubscribed) == (2, 0, 1)
    assert len(rows) == 2
    assert invitations[0].status == InvitationStatus.PENDING
    assert (after.to_queue, after.already_invited, after.unsubscribed) == (0, 2, 1)


def test_sending_marks_invitations_sent(sessions: sessionmaker[Session]) -> None:
    with sessions() as db, db.begin():
        event = make_event(db)
        _invite_batch(db, event, "eerste-ronde", 2)
        queue_invitations(db, event, batch=None, only=None)

    claimed = claim_due(sessions, "w", 10)
    with sessions() as db, db.begin():
        for mail in claimed:
            assert mark_sent(db, mail.id, "w")

    with sessions() as db:
        invitations = db.scalars(select(Invitation)).all()
        assert [i.status for i in invitations] == [InvitationStatus.SENT] * 2
        assert all(i.sent_at is not None for i in invitations)


def test_bounced_invitation_is_requeued_only_when_named(sessions: sessionmaker[Session]) -> None:
    with sessions() as db, db.begin():
        event = make_event(db)
        [bounced, fine] = _invite_batch(db, event, "eerste-ronde", 2)
        queue_invitations(db, event, batch=None, only=None)
    [first, second] = sorted(claim_due(sessions, "w", 10), key=lambda m: m.id)
    with sessions() as db, db.begin():
        mark_failed(db, first.id, "w", "550 5.1.1 user unknown")
        mark_sent(db, second.id, "w")

    with sessions() as db, db.begin():
        event = db.get_one(Event, event.id)
        assert queue_invitations(db, event, batch=None, only=None) == []
        bounced_email = db.get_one(Invitation, bounced.id).person.email
        fine_email = db.get_one(Invitation, fine.id).person.email
        rows = queue_invitations(db, event, batch=None, only=[bounced_email, fine_email])
        assert [r.idempotency_key for r in rows] == [f"invitation:{bounced.id}:1"]
        assert db.get_one(Invitation, bounced.id).status == InvitationStatus.QUEUED
        assert queue_invitations(db, event, batch=None, only=[bounced_email]) == []


def test_an_invitee_who_answered_before_being_invited_is_not_invited_again(db: Session) -> None:
    # Found in a walk-through: someone who wrote to us before their invitation went out was
    # added and registered by hand; `invite` then asked them again what they had answered.
    event = make_event(db)
    answered, waiting, maybe = _invite_batch(db, event, "eerste-ronde", 3)
    invitee = {
        i.id: db.scalars(select(Participant).where(Participant.invitation_id == i.id)).one()
        for i in (answered, maybe)
    }
    invitee[answered.id].status = ParticipantStatus.REGISTERED  # as `answer` leaves it
    invitee[maybe.id].tentative_at = datetime(2023, 1, 12, 9, 0, tzinfo=UTC)  # "misschien"
    db.flush()

    rows = queue_invitations(db, event, batch=None, only=None)

    assert [r.idempotency_key for r in rows] == [f"invitation:{waiting.id}"]
    assert answered.status == InvitationStatus.PENDING
