"""Many workers, one event: the last seats go to exactly the right number of people.

400 acceptances for 100 seats are processed by 4 worker threads, each message in its own
session and transaction, exactly as the IMAP reader does (record_inbound + process_inbound +
commit). On PostgreSQL the workers really run side by side and the event row lock decides;
on SQLite BEGIN IMMEDIATE serialises them. Then 10 cancellations, processed concurrently,
must produce exactly 10 offers, to the first 10 on the waitlist.
"""

from __future__ import annotations

import queue
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    AuditEntry,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    Participant,
    ParticipantStatus,
)
from tests.factories import invite, make_event
from tests.mailfactory import ManualClock, reply
from workflows.inbound import process_inbound, record_inbound

P = ParticipantStatus
SEATS, ACCEPTANCES, CANCELLATIONS, WORKERS = 100, 400, 10, 4

pytestmark = pytest.mark.slow


def process_concurrently(factory: sessionmaker[Session], messages: list[bytes]) -> list[str]:
    """Process `messages` with WORKERS threads; returns the errors (empty when all went well).

    A worker retries a message whose transaction failed on database contention, like the
    IMAP reader does (the message stays on the server until its transaction commits).
    """
    work: queue.Queue[bytes] = queue.Queue()
    for raw in messages:
        work.put(raw)
    errors: list[str] = []

    def worker() -> None:
        while True:
            try:
                raw = work.get_nowait()
            except queue.Empty:
                return
            for attempt in range(5):
                try:
                    with factory() as db:
                        row, new = record_inbound(db, raw, mailbox="INBOX", uidvalidity=1, uid=None)
                        if new:
                            process_inbound(db, row)
                        db.commit()
                    break
                except OperationalError as exc:
                    if attempt == 4:
                        errors.append(f"gave up: {exc}")
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    break

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return errors


def test_last_seats_under_concurrency(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with sessions() as db:
        event = make_event(db, capacity=SEATS)
        people = [
            invite(db, event, f"wethouder{i}@gemeente{i}.example")[1] for i in range(ACCEPTANCES)
        ]
        db.commit()
        tokens = [(p.person.email, p.invitation.token) for p in people if p.invitation]
        event_id = event.id

    accepts = [
        reply(to_token=token, from_=email, text="Ja, ik kom graag, deelsessie wonen.")
        for email, token in tokens
    ]
    assert process_concurrently(sessions, accepts) == []

    with sessions() as db:
        statuses = _count_statuses(db, event_id)
        assert statuses == {P.REGISTERED: SEATS, P.WAITLISTED: ACCEPTANCES - SEATS}
        assert _inbound_statuses(db) == {InboundStatus.PROCESSED: ACCEPTANCES}
        # arrival order = the order the event lock was granted, which is the order of the
        # participants' audit rows (written while holding it)
        registered_at = _entered(db, event_id, P.REGISTERED)
        waitlisted_at = _entered(db, event_id, P.WAITLISTED)
        assert max(registered_at.values()) < min(waitlisted_at.values())
        waiting = db.scalars(
            select(Participant).where(
                Participant.event_id == event_id, Participant.status == P.WAITLISTED
            )
        ).all()
        by_processing = sorted(waiting, key=lambda p: waitlisted_at[p.id])
        seqs = [p.waitlist_seq for p in by_processing]
        assert seqs == sorted(seqs), "waitlist numbers do not follow processing order"
        assert seqs == list(range(1, ACCEPTANCES - SEATS + 1)), "positions are not contiguous"
        assert _mail_count(db, "registration_confirmed") == SEATS
        assert _mail_count(db, "waitlisted") == ACCEPTANCES - SEATS
        first_waiting = [p.id for p in sorted(waiting, key=lambda p: p.waitlist_seq or 0)]
        leaving = db.scalars(
            select(Participant)
            .where(Participant.event_id == event_id, Participant.status == P.REGISTERED)
            .order_by(Participant.id)
            .limit(CANCELLATIONS)
        ).all()
        cancel_mails = [
            reply(
                to_token=p.invitation.token,
                from_=p.person.email,
                text="Ik moet mij helaas afmelden, er is iets tussengekomen.",
            )
            for p in leaving
            if p.invitation
        ]

    assert process_concurrently(sessions, cancel_mails) == []

    with sessions() as db:
        statuses = _count_statuses(db, event_id)
        assert statuses == {
            P.REGISTERED: SEATS - CANCELLATIONS,
            P.CANCELLED: CANCELLATIONS,
            P.OFFERED: CANCELLATIONS,
            P.WAITLISTED: ACCEPTANCES - SEATS - CANCELLATIONS,
        }
        offered = db.scalars(
            select(Participant.id).where(
                Participant.event_id == event_id, Participant.status == P.OFFERED
            )
        ).all()
        assert sorted(offered) == sorted(first_waiting[:CANCELLATIONS])
        assert _mail_count(db, "seat_offered") == CANCELLATIONS


def _count_statuses(db: Session, event_id: int) -> dict[P, int]:
    rows = db.execute(
        select(Participant.status, func.count(Participant.id))
        .where(Participant.event_id == event_id)
        .group_by(Participant.status)
    ).all()
    return {status: count for status, count in rows}


def _inbound_statuses(db: Session) -> dict[InboundStatus, int]:
    rows = db.execute(
        select(InboundMessage.status, func.count(InboundMessage.id)).group_by(InboundMessage.status)
    ).all()
    return {status: count for status, count in rows}


def _entered(db: Session, event_id: int, status: P) -> dict[int, int]:
    """participant id → id of the audit row of its move into `status`."""
    rows = db.execute(
        select(AuditEntry.entity_id, func.max(AuditEntry.id))
        .where(
            AuditEntry.machine == "participant",
            AuditEntry.event_id == event_id,
            AuditEntry.new_status == status.value,
            AuditEntry.old_status.is_not(None),
        )
        .group_by(AuditEntry.entity_id)
    ).all()
    return {entity_id: audit_id for entity_id, audit_id in rows}


def _mail_count(db: Session, kind: str) -> int:
    return int(
        db.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.kind == kind)) or 0
    )
