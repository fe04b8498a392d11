"""The sending workflow and the shared rate limit, on SQLite and PostgreSQL (no SMTP here).

Outbox rows are built directly with raw bytes, so these tests depend only on the rules in
workflows/sending.py and workflows/ratelimit.py, not on mail composition.
"""

from __future__ import annotations

import logging
import math
import random
import smtplib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from db.models import (
    AuditEntry,
    Event,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Person,
    RateLimitBucket,
    Unsubscription,
)
from jobs import smtp_sender
from jobs.logsetup import KeyValueFormatter
from jobs.settings import ServiceSettings
from tests.factories import invite, make_event, make_person
from workflows.clock import now
from workflows.errors import RsvpError
from workflows.outbox import NON_ESSENTIAL, MailKind
from workflows.ratelimit import BucketShape, return_tokens, take_tokens
from workflows.sending import (
    RetryPolicy,
    bounce_address,
    claim_due,
    mark_failed,
    mark_retry,
    mark_sent,
    record_accepted,
    retry_failed,
    settle_accepted,
)
from workflows.transitions import transition

START = datetime(2023, 1, 9, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
def traveller() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as t:
        yield t


def _raw(to: str, subject: str = "Uitnodiging") -> bytes:
    msg = EmailMessage()
    msg["From"] = "WijkWijzer <aanmelden@wijkwijzer.example>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Beste genodigde,\n\nU bent van harte uitgenodigd.\n")
    return msg.as_bytes()


def _queue(
    db: Session,
    event: Event,
    person: Person | None,
    key: str,
    *,
    kind: MailKind = MailKind.REGISTRATION_CONFIRMED,
    recipient: str | None = None,
) -> OutboundMessage:
    to = recipient or (person.email if person else "someone@x.example")
    row = OutboundMessage(
        idempotency_key=key,
        kind=kind.value,
        event_id=event.id,
        person_id=person.id if person else None,
        recipient=to,
        message_id=f"<{key}@wijkwijzer.example>",
        raw=_raw(to),
        essential=kind not in NON_ESSENTIAL,
        status=OutboundStatus.PENDING,
        next_attempt_at=now(),
    )
    db.add(row)
    db.flush()
    return row


def _rows(sessions: sessionmaker[Session]) -> dict[int, OutboundMessage]:
    with sessions() as db:
        # The bytes live in outbound_bodies; load them before the rows leave the session.
        query = select(OutboundMessage).options(selectinload(OutboundMessage.body))
        return {r.id: r for r in db.scalars(query)}


def _audit(sessions: sessionmaker[Session], outbound_id: int) -> list[tuple[str | None, str, str]]:
    with sessions() as db:
        entries = db.scalars(
            select(AuditEntry)
            .where(AuditEntry.machine == "outbound", AuditEntry.entity_id == outbound_id)
            .order_by(AuditEntry.id)
        )
        return [(e.old_status, e.new_status, e.actor) for e in entries]


def _setup_rows(db: Session, count: int) -> list[int]:
    event = make_event(db)
    ids = [
        _queue(db, event, make_person(db, f"p{i}@gemeente{i % 7}.example"), f"k{i}").id
        for i in range(count)
    ]
    db.commit()
    return ids


# --------------------------------------------------------------------------- claims


def test_claim_moves_due_rows_to_sending_once(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    ids = _setup_rows(db, 3)

    claimed = claim_due(sessions, "worker-a", 10, lease=LEASE)
    again = claim_due(sessions, "worker-b", 10, lease=LEASE)

    assert sorted(m.id for m in claimed) == sorted(ids)
    assert again == []
    rows = _rows(sessions)
    for mail in claimed:
        row = rows[mail.id]
        assert row.status == OutboundStatus.SENDING
        assert row.claimed_by == "worker-a"
        assert row.attempts == mail.attempts == 1
        assert row.lease_until == now() + LEASE == mail.lease_until
        assert mail.raw == row.raw
        assert mail.envelope_from == "aanmelden+bounces@wijkwijzer.example"
        assert _audit(sessions, mail.id) == [("pending", "sending", "worker-a")]


def test_claim_takes_at_most_limit_and_only_due_rows(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    ids = _setup_rows(db, 5)
    later = db.get(OutboundMessage, ids[0])
    assert later is not None
    later.next_attempt_at = now() + timedelta(minutes=10)
    db.commit()

    first = claim_due(sessions, "w", 2, lease=LEASE)
    rest = claim_due(sessions, "w", 10, lease=LEASE)

    assert len(first) == 2
    assert sorted(m.id for m in first + rest) == sorted(ids[1:])


def test_expired_lease_is_claimed_again_and_the_old_worker_cannot_record(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    [outbound_id] = _setup_rows(db, 1)
    [first] = claim_due(sessions, "crashed", 1, lease=LEASE)

    traveller.shift(LEASE - timedelta(seconds=1))
    assert claim_due(sessions, "rescuer", 1, lease=LEASE) == []  # lease still running
    traveller.shift(timedelta(seconds=2))
    [second] = claim_due(sessions, "rescuer", 1, lease=LEASE)

    assert second.id == first.id == outbound_id
    assert second.attempts == 2
    with sessions() as db2, db2.begin():
        assert mark_sent(db2, outbound_id, "crashed") is False
    with sessions() as db2, db2.begin():
        assert mark_sent(db2, outbound_id, "rescuer") is True
    row = _rows(sessions)[outbound_id]
    assert row.status == OutboundStatus.SENT
    assert row.claimed_by is None and row.lease_until is None
    assert row.sent_at == now()
    assert [a[:2] for a in _audit(sessions, outbound_id)] == [
        ("pending", "sending"),
        ("sending", "pending"),  # the lease of "crashed" expired
        ("pending", "sending"),
        ("sending", "sent"),
    ]


def test_recorded_acceptance_is_settled_as_sent_in_one_go(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    ids = _setup_rows(db, 3)
    claim_due(sessions, "w", 3, lease=LEASE)
    with sessions() as db2, db2.begin():
        assert record_accepted(db2, ids[0], "w")
        assert record_accepted(db2, ids[1], "w")
        assert not record_accepted(db2, ids[1], "w")  # recorded once only
        assert not record_accepted(db2, ids[2], "someone-else")

    rows = _rows(sessions)
    assert [rows[i].status for i in ids] == [OutboundStatus.SENDING] * 3
    assert rows[ids[0]].sent_at == now() and rows[ids[2]].sent_at is None
    with sessions() as db2, db2.begin():
        assert settle_accepted(db2, "w") == 2

    rows = _rows(sessions)
    assert [rows[i].status for i in ids] == [
        OutboundStatus.SENT,
        OutboundStatus.SENT,
        OutboundStatus.SENDING,
    ]
    assert _audit(sessions, ids[0])[-1] == ("sending", "sent", "w")


def test_a_dead_workers_recorded_mail_is_settled_not_sent_again(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    [outbound_id] = _setup_rows(db, 1)
    claim_due(sessions, "crashed", 1, lease=LEASE)
    with sessions() as db2, db2.begin():
        record_accepted(db2, outbound_id, "crashed")  # ... and then it died

    traveller.shift(LEASE + timedelta(seconds=1))
    assert claim_due(sessions, "rescuer", 1, lease=LEASE) == []

    row = _rows(sessions)[outbound_id]
    assert row.status == OutboundStatus.SENT and row.attempts == 1
    assert _audit(sessions, outbound_id)[-1] == ("sending", "sent", "rescuer")


def test_a_row_whose_workers_keep_dying_fails_after_max_attempts(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    [outbound_id] = _setup_rows(db, 1)
    policy = RetryPolicy(max_attempts=3)
    for attempt in range(3):
        assert len(claim_due(sessions, f"w{attempt}", 1, lease=LEASE, policy=policy)) == 1
        traveller.shift(LEASE + timedelta(seconds=1))

    assert claim_due(sessions, "w-last", 1, lease=LEASE, policy=policy) == []
    row = _rows(sessions)[outbound_id]
    assert row.status == OutboundStatus.FAILED
    assert "gave up after 3 attempts" in (row.last_error or "")


def test_two_claimers_never_get_the_same_row(db: Session, sessions: sessionmaker[Session]) -> None:
    ids = _setup_rows(db, 120)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(name: str) -> None:
        try:
            barrier.wait()
            mine: list[int] = []
            while batch := claim_due(sessions, name, 7, lease=LEASE):
                mine.extend(m.id for m in batch)
            got[name] = mine
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors
    claimed = [i for mine in got.values() for i in mine]
    assert sorted(claimed) == sorted(ids)  # every row once: none twice, none lost
    rows = _rows(sessions)
    for name, mine in got.items():
        assert all(rows[i].claimed_by == name for i in mine)


def test_unsubscribed_recipient_gets_essential_mail_but_not_reminders(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    event = make_event(db)
    person = make_person(db, "f.visser@oosterdijk.example")
    db.add(Unsubscription(person_id=person.id, organiser=event.organiser))
    reminder = _queue(db, event, person, "reminder:1", kind=MailKind.REMINDER)
    confirmation = _queue(db, event, person, "confirm:1", kind=MailKind.REGISTRATION_CONFIRMED)
    db.commit()

    claimed = claim_due(sessions, "w", 10, lease=LEASE)

    assert [m.id for m in claimed] == [confirmation.id]
    rows = _rows(sessions)
    assert rows[reminder.id].status == OutboundStatus.SUPPRESSED
    assert _audit(sessions, reminder.id) == [("pending", "suppressed", "w")]


def test_unsubscribing_from_another_organiser_changes_nothing(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    event = make_event(db)
    person = make_person(db, "f.visser@oosterdijk.example")
    db.add(Unsubscription(person_id=person.id, organiser="Een andere organisatie"))
    reminder = _queue(db, event, person, "reminder:1", kind=MailKind.REMINDER)
    db.commit()

    assert [m.id for m in claim_due(sessions, "w", 10, lease=LEASE)] == [reminder.id]


# ------------------------------------------------------------------- results, retries


def test_backoff_doubles_from_a_minute_caps_at_an_hour_with_jitter() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    for attempts in range(1, 15):
        expected = min(timedelta(hours=1), timedelta(minutes=1) * 2 ** (attempts - 1))
        delays = [policy.delay(attempts, rng) for _ in range(200)]
        assert min(delays) >= expected * 0.8
        assert max(delays) <= expected * 1.2
        # The jitter really spreads retries (not all at the same moment).
        assert max(delays) - min(delays) > expected * 0.2


def test_temporary_failure_goes_back_to_pending_after_backoff(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    [outbound_id] = _setup_rows(db, 1)
    policy = RetryPolicy()
    claim_due(sessions, "w", 1, lease=LEASE)

    with sessions() as db2, db2.begin():
        status = mark_retry(db2, outbound_id, "w", "451 4.3.0 try later", policy=policy)

    assert status == OutboundStatus.PENDING
    row = _rows(sessions)[outbound_id]
    delay = row.next_attempt_at - now()
    assert timedelta(minutes=1) * 0.8 <= delay <= timedelta(minutes=1) * 1.2
    assert row.last_error == "451 4.3.0 try later"
    assert row.claimed_by is None and row.lease_until is None
    assert claim_due(sessions, "w", 1, lease=LEASE) == []  # not due yet
    traveller.shift(delay)
    [again] = claim_due(sessions, "w", 1, lease=LEASE)
    assert again.attempts == 2


def test_temporary_failures_end_as_failed_after_max_attempts(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    event = make_event(db)
    invitation, _ = invite(db, event, "j.meijer@bergveld.example")
    transition(db, invitation, InvitationStatus.QUEUED, reason="as queue_invitations leaves it")
    outbound_id = _queue(db, event, invitation.person, "invitation:x", kind=MailKind.INVITATION).id
    db.commit()
    policy = RetryPolicy(max_attempts=4)
    statuses = []
    for _ in range(4):
        traveller.shift(timedelta(hours=2))
        assert len(claim_due(sessions, "w", 1, lease=LEASE, policy=policy)) == 1
        with sessions() as db2, db2.begin():
            statuses.append(mark_retry(db2, outbound_id, "w", "451 busy", policy=policy))

    assert statuses == [OutboundStatus.PENDING] * 3 + [OutboundStatus.FAILED]
    row = _rows(sessions)[outbound_id]
    assert row.status == OutboundStatus.FAILED and row.attempts == 4
    db.expire_all()
    assert invitation.status == InvitationStatus.UNDELIVERABLE
    assert invitation.bounce_reason == "451 busy"


def test_permanent_failure_keeps_the_server_reply(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    [outbound_id] = _setup_rows(db, 1)
    claim_due(sessions, "w", 1, lease=LEASE)
    reply = "550 5.1.1 <p0@gemeente0.example>: Recipient address rejected"

    with sessions() as db2, db2.begin():
        assert mark_failed(db2, outbound_id, "other-worker", reply) is False
    with sessions() as db2, db2.begin():
        assert mark_failed(db2, outbound_id, "w", reply) is True

    row = _rows(sessions)[outbound_id]
    assert row.status == OutboundStatus.FAILED
    assert row.last_error == reply
    assert _audit(sessions, outbound_id)[-1] == ("sending", "failed", "w")


def test_sent_invitation_mail_marks_the_invitation_sent(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    event = make_event(db)
    invitation, _ = invite(db, event, "l.elamrani@zwaanshoek.example")
    transition(db, invitation, InvitationStatus.QUEUED, reason="as queue_invitations leaves it")
    outbound_id = _queue(db, event, invitation.person, "invitation:y", kind=MailKind.INVITATION).id
    db.commit()
    claim_due(sessions, "w", 1, lease=LEASE)
    traveller.shift(timedelta(seconds=3))

    with sessions() as db2, db2.begin():
        assert mark_sent(db2, outbound_id, "w")

    db.expire_all()
    assert invitation.status == InvitationStatus.SENT
    assert invitation.sent_at == now()


def test_retry_failed_makes_a_failed_mail_due_again(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    ids = _setup_rows(db, 2)
    claim_due(sessions, "w", 2, lease=LEASE)
    with sessions() as db2, db2.begin():
        mark_failed(db2, ids[0], "w", "550 no such user")
        mark_sent(db2, ids[1], "w")

    with sessions() as db2, db2.begin():
        retry_failed(db2, ids[0], actor="cli")
    with sessions() as db2, db2.begin(), pytest.raises(RsvpError, match="is sent, not failed"):
        retry_failed(db2, ids[1], actor="cli")

    [again] = claim_due(sessions, "w", 5, lease=LEASE)
    assert again.id == ids[0] and again.attempts == 1


def test_bounce_address_is_a_tag_of_the_reply_address() -> None:
    assert bounce_address("aanmelden@wijkwijzer.example") == "aanmelden+bounces@wijkwijzer.example"
    assert (
        bounce_address("aanmelden+x@wijkwijzer.example") == "aanmelden+bounces@wijkwijzer.example"
    )
    with pytest.raises(RsvpError, match="not an e-mail address"):
        bounce_address("aanmelden")


# -------------------------------------------------------------------------- rate limit


def test_bucket_shape_never_exceeds_the_limit_in_a_minute() -> None:
    for per_minute in (1, 2, 10, 30, 60, 600, 10_000):
        shape = BucketShape.for_limit(per_minute)
        assert shape.capacity >= 1
        # Whole tokens: at most what was in the bucket plus what flowed in during the minute.
        assert math.floor(shape.capacity + 60 * shape.refill_per_second + 1e-9) <= per_minute
        # ... while not throttling needlessly: at least 80 % of the limit in the long run.
        if per_minute >= 10:
            assert shape.refill_per_second * 60 >= 0.8 * per_minute
    with pytest.raises(ValueError, match="must be positive"):
        BucketShape.for_limit(0)


def test_bucket_grants_burst_then_refills_with_time(
    db: Session, traveller: time_machine.Traveller
) -> None:
    per_minute = 60
    shape = BucketShape.for_limit(per_minute)
    burst = int(shape.capacity)

    assert take_tokens(db, "smtp:test", per_minute, 100) == burst
    assert take_tokens(db, "smtp:test", per_minute, 1) == 0
    seconds_per_token = 1 / shape.refill_per_second
    traveller.shift(timedelta(seconds=seconds_per_token * 0.99))
    assert take_tokens(db, "smtp:test", per_minute, 1) == 0
    traveller.shift(timedelta(seconds=seconds_per_token * 0.02))
    assert take_tokens(db, "smtp:test", per_minute, 5) == 1
    traveller.shift(timedelta(hours=1))  # a long pause refills only up to the burst
    assert take_tokens(db, "smtp:test", per_minute, 1000) == burst
    return_tokens(db, "smtp:test", per_minute, 3)
    assert take_tokens(db, "smtp:test", per_minute, 1000) == 3
    db.commit()
    bucket = db.get(RateLimitBucket, "smtp:test")
    assert bucket is not None and bucket.updated_at == now()


def test_bucket_holds_the_limit_in_every_minute_window(
    db: Session, traveller: time_machine.Traveller
) -> None:
    per_minute = 30
    rng = random.Random(3)
    taken: list[datetime] = []
    for _ in range(600):  # greedy workers asking at random moments for 10 minutes or so
        traveller.shift(timedelta(seconds=rng.uniform(0, 2)))
        taken.extend([now()] * take_tokens(db, "smtp:window", per_minute, rng.randint(1, 5)))
    db.commit()

    assert len(taken) > 0.8 * per_minute * (taken[-1] - taken[0]).total_seconds() / 60
    for i, start in enumerate(taken):
        in_window = sum(1 for t in taken[i:] if t < start + timedelta(minutes=1))
        assert in_window <= per_minute


def test_concurrent_workers_share_one_bucket(
    sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    per_minute = 600
    burst = int(BucketShape.for_limit(per_minute).capacity)
    granted: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(10):
                with sessions() as db, db.begin():
                    granted.append(take_tokens(db, "smtp:shared", per_minute, 3))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors
    # The clock stands still, so all workers together get exactly one burst, never more.
    assert sum(granted) == burst


def test_settling_two_accepted_mails_of_one_invitation_in_one_batch(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    """A re-sent invitation (`invitation:<id>:<n>`) may go out in the same batch as an earlier
    mail of the same invitation (a bounce re-queued it while that one was still pending).
    The invitation moves to sent once; moving it twice would fail the second compare-and-set
    and roll back the whole settle (and stop the sender)."""
    event = make_event(db)
    invitation, _ = invite(db, event, "j.meijer@bergveld.example")
    transition(db, invitation, InvitationStatus.QUEUED, reason="as queue_invitations leaves it")
    key = f"invitation:{invitation.id}"
    first = _queue(db, event, invitation.person, key, kind=MailKind.INVITATION).id
    again = _queue(db, event, invitation.person, f"{key}:1", kind=MailKind.INVITATION).id
    db.commit()
    assert len(claim_due(sessions, "w", 10, lease=LEASE)) == 2
    traveller.shift(timedelta(seconds=3))
    for outbound_id in (first, again):
        with sessions() as db2, db2.begin():
            assert record_accepted(db2, outbound_id, "w")

    with sessions() as db2, db2.begin():
        assert settle_accepted(db2, "w") == 2

    rows = _rows(sessions)
    assert rows[first].status == OutboundStatus.SENT
    assert rows[again].status == OutboundStatus.SENT
    with sessions() as db2:
        assert db2.get(Invitation, invitation.id).status == InvitationStatus.SENT  # type: ignore[union-attr]
        moves = db2.scalars(
            select(AuditEntry.new_status).where(
                AuditEntry.machine == "invitation", AuditEntry.entity_id == invitation.id
            )
        ).all()
        assert list(moves).count("sent") == 1


def test_every_mail_outcome_is_one_key_value_line_without_the_address(
    db: Session,
    sessions: sessionmaker[Session],
    traveller: time_machine.Traveller,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = make_event(db)
    reminder_to = make_person(db, "f.visser@oosterdijk.example")
    db.add(Unsubscription(person_id=reminder_to.id, organiser=event.organiser))
    _queue(db, event, reminder_to, "reminder:1", kind=MailKind.REMINDER)
    ok = _queue(db, event, make_person(db, "a.jansen@amersfoort.example"), "confirm:1")
    refused = _queue(db, event, make_person(db, "j.dekker@utrecht.example"), "confirm:2")
    db.commit()

    def send(self: object, envelope_from: str, recipient: str, raw: bytes, **_: object) -> None:
        if recipient.startswith("j.dekker"):
            reply = f"5.1.1 <{recipient}>: user unknown".encode()
            raise smtplib.SMTPRecipientsRefused({recipient: (550, reply)})

    monkeypatch.setattr(smtp_sender.SmtpConnection, "send", send)
    caplog.set_level(logging.INFO)
    smtp_sender.send_due(sessions, ServiceSettings(), worker="w")

    lines = [r for r in caplog.records if r.getMessage() == "outbox mail"]
    by_outcome = {r.fields["outcome"]: r.fields for r in lines}  # type: ignore[attr-defined]
    assert set(by_outcome) == {"suppressed", "sent", "failed"}
    assert by_outcome["sent"] == {
        "outbox_id": ok.id,
        "kind": "registration_confirmed",
        "event_id": event.id,
        "recipient_domain": "amersfoort.example",
        "outcome": "sent",
        "attempts": 1,
        "error": "-",
        "recorded": "true",
    }
    assert by_outcome["failed"]["outbox_id"] == refused.id
    assert by_outcome["failed"]["error"] == "550"
    assert by_outcome["suppressed"]["reason"] == "unsubscribed"
    formatted = [KeyValueFormatter().format(r) for r in caplog.records]
    assert not any("@" in line for line in formatted), formatted
