"""Sending the outbox, without the network: claims, results, retries and their follow-ups.

A worker (jobs/smtp_sender.py) repeats: claim due rows → hand each to SMTP → record the
result. The rules that make this safe with several workers and with crashes live here:

* A claim is a short transaction of its own, committed before any SMTP traffic. It moves
  rows pending → sending, gives them a lease (`lease_until`, `claimed_by`) and counts the
  attempt. A row whose lease ran out (its worker died) is due again.
* Claims are compare-and-set: `UPDATE … WHERE id IN (…) AND <still due>`, so a row claimed
  by someone else since we read it is not taken; rows that need a decision of their own
  (suppress, give up) are set one by one with `attempts` as the version number
  (it grows with every claim). On PostgreSQL the candidates are read with `FOR UPDATE SKIP
  LOCKED`, so concurrent workers take different rows instead of queueing behind each other;
  on SQLite every transaction is BEGIN IMMEDIATE, which serialises writers, and the
  compare-and-set is the belt to those braces.
* What must be durable before the server may accept the next mail is only the fact "the
  server accepted mail N": that is what bounds a crash to at most one duplicate. So
  acceptance is recorded at once, one tiny commit per mail (`record_accepted`: sets
  `sent_at`, compare-and-set on `claimed_by`), and the status change sending → sent with
  its audit row and follow-ups (the invitation becomes sent) is written for a whole batch
  at once (`settle_accepted`). A row that was accepted but not settled when its worker died
  is settled by whoever claims it next, never sent again. `mark_sent` does both for one
  mail. (The sender overlaps each record with transmitting the next mail and holds back
  only that mail's final ".".)
* Every result is applied only if the row is still claimed by the same worker, so a worker
  whose lease expired and was taken over cannot overwrite the new claimant's result.
* Every status change goes through `transition()` and leaves an audit row, claims included.
  Claims and settles then write a batch's new values and audit rows with one statement
  each (`_write_through`, `_insert_audit`) rather than object by object in the flush.
* The rendered bytes live in `outbound_bodies`: a claim reads them for its whole batch in
  one query, and the several updates of an outbox row per mail never rewrite them.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from db.models import (
    AuditEntry,
    Event,
    Invitation,
    InvitationStatus,
    OutboundBody,
    OutboundMessage,
    OutboundStatus,
    Unsubscription,
)
from workflows.clock import now
from workflows.errors import NotFound, RsvpError
from workflows.outbox import MailKind
from workflows.transitions import transition

log = logging.getLogger("rsvpmail.sending")

SessionFactory = sessionmaker[Session]


@dataclass(frozen=True)
class RetryPolicy:
    """When a temporarily failed mail is tried again, and when we give up."""

    max_attempts: int = 8
    first_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.2  # ±20 %, so a burst of failures does not retry in lockstep

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """Wait after the `attempts`-th failed attempt: first_delay · 2^(attempts-1), capped."""
        exponent = max(0, attempts - 1)
        # Cap the exponent before raising 2 to it: attempt 2000 must not overflow.
        base = min(self.max_delay, self.first_delay * 2 ** min(exponent, 32))
        factor = 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        delay: timedelta = base * factor
        return delay


@dataclass(frozen=True)
class ClaimedMail:
    """What a worker needs to send one claimed row; no ORM object leaves the transaction."""

    id: int
    kind: str
    recipient: str
    envelope_from: str
    message_id: str
    raw: bytes | None
    attempts: int
    lease_until: datetime


def bounce_address(reply_address: str) -> str:
    """The envelope sender (Return-Path) for mail of an event.

    ``aanmelden@x.nl`` → ``aanmelden+bounces@x.nl``. Bounces go to the envelope sender, and
    this plus-address lands in the same mailbox that rsvpmail reads, so undeliverable
    invitations come back to the organiser and are processed like any reply. The tag lets a
    human (or a mailbox rule) see at once that it is a bounce, and it holds no invitation
    token, so a bounce is never mistaken for the invitee answering.
    """
    local, _, domain = reply_address.partition("@")
    if not local or not domain:
        raise RsvpError(f"reply address {reply_address!r} is not an e-mail address")
    return f"{local.split('+', 1)[0]}+bounces@{domain}"


# ------------------------------------------------------------------------------- claiming


def due_condition(at: datetime) -> Any:
    """Rows ready to be claimed: pending and due, or sending with an expired lease."""
    return or_(
        and_(
            OutboundMessage.status == OutboundStatus.PENDING, OutboundMessage.next_attempt_at <= at
        ),
        and_(OutboundMessage.status == OutboundStatus.SENDING, OutboundMessage.lease_until < at),
    )


def has_due(db: Session) -> bool:
    return db.scalar(select(OutboundMessage.id).where(due_condition(now())).limit(1)) is not None


def count_due(db: Session) -> int:
    return db.scalar(select(func.count()).where(due_condition(now()))) or 0


@dataclass(frozen=True)
class _ClaimContext:
    worker: str
    at: datetime
    lease_until: datetime
    policy: RetryPolicy
    organisers: Mapping[int, str]  # event id → organiser
    reply_addresses: Mapping[int, str]  # event id → reply address
    unsubscribed: set[tuple[int, str]]  # (person id, organiser)
    bodies: dict[int, bytes | None] = field(default_factory=dict)  # row id → rendered bytes

    def suppressed(self, row: OutboundMessage) -> bool:
        if row.essential or row.person_id is None or row.event_id is None:
            return False
        return (row.person_id, self.organisers.get(row.event_id, "")) in self.unsubscribed


def claim_due(
    db_factory: SessionFactory,
    worker: str,
    limit: int,
    *,
    lease: timedelta = timedelta(minutes=5),
    policy: RetryPolicy = RetryPolicy(),
) -> list[ClaimedMail]:
    """Claim up to `limit` due rows for `worker` in one short, committed transaction.

    Non-essential mail to someone who unsubscribed from the organiser is suppressed here
    instead of being handed out. A row a dead worker had already sent is settled as sent.
    A row whose worker died `max_attempts` times in a row is failed rather than retried
    forever (it may be what kills the worker).
    """
    if limit <= 0:
        return []
    with db_factory() as db, db.begin():
        at = now()
        rows = _lock_candidates(db, at, limit)
        if not rows:
            return []
        context = _claim_context(db, rows, worker, at, at + lease, policy)
        # Sorted out before anything changes: claiming a row changes what _is_plain sees.
        plain = [r for r in rows if _is_plain(r, context)]
        special = [r for r in rows if not _is_plain(r, context)]
        claimed: list[ClaimedMail] = []
        # No autoflush: one flush at commit writes all status changes and audit rows as
        # batches instead of a few statements per row.
        with db.no_autoflush:
            _load_bodies(db, plain, context)
            claimed.extend(_claim_plain(db, plain, context))
            for row in special:
                _claim_special(db, row, context)
    return claimed


def _lock_candidates(db: Session, at: datetime, limit: int) -> Sequence[OutboundMessage]:
    query = (
        select(OutboundMessage)
        .where(due_condition(at))
        .order_by(OutboundMessage.next_attempt_at, OutboundMessage.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if db.get_bind().dialect.name == "postgresql":
        # Rows another worker is claiming right now are skipped, not waited for.
        query = query.with_for_update(skip_locked=True)
    return db.scalars(query).all()


def _claim_context(
    db: Session,
    rows: Sequence[OutboundMessage],
    worker: str,
    at: datetime,
    lease_until: datetime,
    policy: RetryPolicy,
) -> _ClaimContext:
    event_ids = {r.event_id for r in rows if r.event_id is not None}
    events = db.execute(
        select(Event.id, Event.organiser, Event.reply_address).where(Event.id.in_(event_ids))
    ).all()
    person_ids = {r.person_id for r in rows if not r.essential and r.person_id is not None}
    unsubscribed: set[tuple[int, str]] = set()
    if person_ids:
        pairs = db.execute(
            select(Unsubscription.person_id, Unsubscription.organiser).where(
                Unsubscription.person_id.in_(person_ids)
            )
        ).all()
        unsubscribed = {(person_id, organiser) for person_id, organiser in pairs}
    return _ClaimContext(
        worker=worker,
        at=at,
        lease_until=lease_until,
        policy=policy,
        organisers={event_id: organiser for event_id, organiser, _ in events},
        reply_addresses={event_id: address for event_id, _, address in events},
        unsubscribed=unsubscribed,
    )


def _load_bodies(db: Session, rows: Sequence[OutboundMessage], context: _ClaimContext) -> None:
    """The rendered bytes of the rows about to be sent: one query for the whole batch."""
    if not rows:
        return
    found = db.execute(
        select(OutboundBody.outbound_id, OutboundBody.raw).where(
            OutboundBody.outbound_id.in_([r.id for r in rows])
        )
    )
    context.bodies.update({row_id: raw for row_id, raw in found})


def _is_plain(row: OutboundMessage, context: _ClaimContext) -> bool:
    """Due to go out now: not suppressed, not sent by a dead worker, not given up on."""
    if context.suppressed(row):
        return False
    if row.status != OutboundStatus.SENDING:
        return True
    return row.sent_at is None and row.attempts < context.policy.max_attempts


def _claim_plain(
    db: Session, rows: Sequence[OutboundMessage], context: _ClaimContext
) -> list[ClaimedMail]:
    """Claim rows that simply go out: one compare-and-set statement for all of them."""
    if not rows:
        return []
    won = db.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.id.in_([r.id for r in rows]),
            due_condition(context.at),
            # Accepted just now by a worker whose lease ran out: settle it, never resend.
            OutboundMessage.sent_at.is_(None),
        )
        .values(
            # The status too, so the claim is one statement; `transition` below checks the
            # move and writes its audit row. The rows are locked since we read them (BEGIN
            # IMMEDIATE, or FOR UPDATE), so the status we read is the one we replace.
            status=OutboundStatus.SENDING,
            claimed_by=context.worker,
            lease_until=context.lease_until,
            attempts=OutboundMessage.attempts + 1,
        )
        .returning(OutboundMessage.id, OutboundMessage.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    current = {row_id: attempts for row_id, attempts in won}
    claimed = []
    entries = []
    for row in rows:
        if row.id not in current:
            continue  # another worker claimed it after we read it
        attempts = current[row.id]
        abandoned_by = row.claimed_by if row.status == OutboundStatus.SENDING else None
        # Tell the ORM what the database now holds, without writing it a second time.
        set_committed_value(row, "claimed_by", context.worker)
        set_committed_value(row, "lease_until", context.lease_until)
        set_committed_value(row, "attempts", attempts)
        if abandoned_by is not None:
            entries.append(_release_abandoned(db, row, abandoned_by, context.worker))
        entry = transition(
            db,
            row,
            OutboundStatus.SENDING,
            reason=f"claimed, attempt {attempts}",
            actor=context.worker,
        )
        entries.append(entry)
        set_committed_value(row, "status", OutboundStatus.SENDING)  # written by the claim
        claimed.append(_claimed_mail(row, context))
    _insert_audit(db, entries)
    return claimed


def _claim_special(db: Session, row: OutboundMessage, context: _ClaimContext) -> None:
    """Rows that are not sent now: sent by a worker that died, given up on, or suppressed."""
    worker = context.worker
    abandoned_by = row.claimed_by if row.status == OutboundStatus.SENDING else None
    if not _compare_and_set(db, row, claimed_by=None, lease_until=None):
        return  # another worker got to it first
    if abandoned_by is not None and row.sent_at is not None:
        transition(
            db,
            row,
            OutboundStatus.SENT,
            reason=f"accepted by the SMTP server; settled after the lease of {abandoned_by} "
            "expired",
            actor=worker,
        )
        _follow_up_sent(db, [row], worker)
        return
    if abandoned_by is not None and row.attempts >= context.policy.max_attempts:
        row.last_error = (
            f"gave up after {row.attempts} attempts: each time the worker stopped while "
            f"sending (last: {abandoned_by})"
        )
        transition(db, row, OutboundStatus.FAILED, reason=row.last_error, actor=worker)
        after_failure(db, row, worker)
        return
    if abandoned_by is not None:
        _release_abandoned(db, row, abandoned_by, worker)
    transition(
        db,
        row,
        OutboundStatus.SUPPRESSED,
        reason="recipient unsubscribed from the organiser",
        actor=worker,
    )
    log.info(
        "outbox %s %s to @%s: suppressed (unsubscribed)", row.id, row.kind, _domain(row.recipient)
    )


def _release_abandoned(
    db: Session, row: OutboundMessage, abandoned_by: str, worker: str
) -> AuditEntry:
    return transition(
        db,
        row,
        OutboundStatus.PENDING,
        reason=f"lease of {abandoned_by} expired; due again",
        actor=worker,
    )


def _compare_and_set(
    db: Session, row: OutboundMessage, *, claimed_by: str | None, lease_until: datetime | None
) -> bool:
    """Take one row only if nobody changed it since we read it (status and attempts)."""
    result = db.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.id == row.id,
            OutboundMessage.status == row.status,
            OutboundMessage.attempts == row.attempts,
        )
        .values(claimed_by=claimed_by, lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return False
    set_committed_value(row, "claimed_by", claimed_by)
    set_committed_value(row, "lease_until", lease_until)
    return True


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))


def _claimed_mail(row: OutboundMessage, context: _ClaimContext) -> ClaimedMail:
    raw = context.bodies.get(row.id)
    return ClaimedMail(
        id=row.id,
        kind=row.kind,
        recipient=row.recipient,
        envelope_from=_envelope_from(row, raw, context.reply_addresses),
        message_id=row.message_id,
        raw=raw,
        attempts=row.attempts,
        lease_until=context.lease_until,
    )


def _envelope_from(
    row: OutboundMessage, raw: bytes | None, reply_addresses: Mapping[int, str]
) -> str:
    address = reply_addresses.get(row.event_id) if row.event_id is not None else None
    if address:
        return bounce_address(address)
    return _header_from(raw or b"")


def _header_from(raw: bytes) -> str:
    """Mail without an event (it was deleted) falls back to its own From address."""
    from email.parser import BytesHeaderParser
    from email.utils import parseaddr

    value = BytesHeaderParser().parsebytes(raw).get("From", "")
    return parseaddr(str(value))[1]


# -------------------------------------------------------------------------------- results


# Built once: recording runs once per mail, so it skips building and compiling a statement.
_RECORD_ACCEPTED = (
    update(OutboundMessage)
    .where(
        OutboundMessage.id == bindparam("outbound_id"),
        OutboundMessage.status == OutboundStatus.SENDING,
        OutboundMessage.claimed_by == bindparam("worker"),
        OutboundMessage.sent_at.is_(None),
    )
    .values(sent_at=bindparam("at"), last_error=None)
)


def record_accepted(db: Session, outbound_id: int, worker: str) -> bool:
    """The server accepted the mail: make that durable now, with one small statement.

    The row stays `sending` (claimed by `worker`) with `sent_at` set until
    `settle_accepted` moves it to sent. False when `worker` no longer holds the row.
    """
    return record_accepted_on(db.connection(), outbound_id, worker)


def record_accepted_on(connection: Connection, outbound_id: int, worker: str) -> bool:
    """`record_accepted` on a plain connection: the sender's per-mail commit needs no Session."""
    result = connection.execute(
        _RECORD_ACCEPTED, {"outbound_id": outbound_id, "worker": worker, "at": now()}
    )
    if _rowcount(result) != 1:
        log.warning(
            "outbox %s: %s no longer holds it; acceptance not recorded", outbound_id, worker
        )
        return False
    return True


def settle_accepted(db: Session, worker: str, outbound_ids: Sequence[int] | None = None) -> int:
    """Move `worker`'s accepted rows (all, or those in `outbound_ids`) from sending to sent.

    Writes their audit rows and follow-ups in one go; returns how many were settled.
    """
    query = (
        select(OutboundMessage)
        .where(
            OutboundMessage.status == OutboundStatus.SENDING,
            OutboundMessage.claimed_by == worker,
            OutboundMessage.sent_at.is_not(None),
        )
        .order_by(OutboundMessage.id)
        .execution_options(populate_existing=True)
    )
    if outbound_ids is not None:
        query = query.where(OutboundMessage.id.in_(list(outbound_ids)))
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    rows = db.scalars(query).all()
    with db.no_autoflush:
        entries = [
            transition(
                db, row, OutboundStatus.SENT, reason="accepted by the SMTP server", actor=worker
            )
            for row in rows
        ]
        settled = {"status": OutboundStatus.SENT, "claimed_by": None, "lease_until": None}
        _write_through(db, [(row, settled) for row in rows])
        _insert_audit(db, entries)
        _follow_up_sent(db, rows, worker)
    return len(rows)


# ------------------------------------------------ writing a batch's changes in one go
#
# Claims and settles change every row of a batch the same way. Left to the unit of work,
# each changed object and each audit row costs its own bookkeeping (and every audit INSERT
# a RETURNING of an id nobody reads), which made up most of the sender's time per mail.
# These write a batch with one executemany statement each instead. The status changes
# still go through `transition`, which checks each move and makes its audit row.


def _write_through(db: Session, changes: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
    """Write each object's new `values` now: one UPDATE by primary key for all of them.

    The ORM is told that the database holds these values, so the flush at commit does not
    write them a second time. The objects must be of one mapped class with an `id` key.
    """
    if not changes:
        return
    table = type(changes[0][0]).__table__
    keys = list(changes[0][1])
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({key: bindparam(f"_{key}") for key in keys})
    )
    rows = [{"_id": obj.id, **{f"_{key}": values[key] for key in keys}} for obj, values in changes]
    db.connection().execute(statement, rows)
    for obj, values in changes:
        for key, value in values.items():
            set_committed_value(obj, key, value)


_AUDIT_COLUMNS = tuple(c.key for c in AuditEntry.__table__.columns if c.key not in ("id", "at"))


def _insert_audit(db: Session, entries: Sequence[AuditEntry]) -> None:
    """Write audit rows made by `transition` now, in one INSERT, instead of at the flush."""
    if not entries:
        return
    at = now()
    for entry in entries:
        db.expunge(entry)  # written here; the flush must not insert it again
    db.connection().execute(
        insert(AuditEntry),
        [{**{key: getattr(entry, key) for key in _AUDIT_COLUMNS}, "at": at} for entry in entries],
    )


def mark_sent(db: Session, outbound_id: int, worker: str) -> bool:
    """The server accepted the mail: record and settle it. False when `worker` lost it."""
    if not record_accepted(db, outbound_id, worker):
        return False
    return settle_accepted(db, worker, [outbound_id]) == 1


def mark_retry(
    db: Session,
    outbound_id: int,
    worker: str,
    error: str,
    *,
    policy: RetryPolicy = RetryPolicy(),
    rng: random.Random | None = None,
) -> OutboundStatus | None:
    """A temporary failure: pending again after a backoff, or failed after max_attempts.

    Returns the new status, or None when `worker` no longer holds the row.
    """
    row = _held_by(db, outbound_id, worker, last_error=error)
    if row is None:
        return None
    if row.attempts >= policy.max_attempts:
        transition(
            db,
            row,
            OutboundStatus.FAILED,
            reason=f"gave up after {row.attempts} attempts; last error: {error}",
            actor=worker,
        )
        after_failure(db, row, worker)
        return OutboundStatus.FAILED
    row.next_attempt_at = now() + policy.delay(row.attempts, rng)
    transition(
        db,
        row,
        OutboundStatus.PENDING,
        reason=f"temporary failure, retry at {row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z: {error}",
        actor=worker,
    )
    return OutboundStatus.PENDING


def mark_failed(db: Session, outbound_id: int, worker: str, error: str) -> bool:
    """A permanent failure (5xx); the server's reply is kept in last_error."""
    row = _held_by(db, outbound_id, worker, last_error=error)
    if row is None:
        return False
    transition(db, row, OutboundStatus.FAILED, reason=f"permanent failure: {error}", actor=worker)
    after_failure(db, row, worker)
    return True


def _held_by(db: Session, outbound_id: int, worker: str, **values: Any) -> OutboundMessage | None:
    """Release `worker`'s claim on an unsent row (setting `values`) if it still holds it.

    One compare-and-set statement that also loads the row (UPDATE … RETURNING).
    """
    statement = (
        update(OutboundMessage)
        .where(
            OutboundMessage.id == outbound_id,
            OutboundMessage.status == OutboundStatus.SENDING,
            OutboundMessage.claimed_by == worker,
            OutboundMessage.sent_at.is_(None),
        )
        .values(claimed_by=None, lease_until=None, **values)
        .returning(OutboundMessage)
    )
    row = db.scalars(
        statement, execution_options={"synchronize_session": False, "populate_existing": True}
    ).one_or_none()
    if row is None:
        log.warning("outbox %s: %s no longer holds it; result not recorded", outbound_id, worker)
    return row


# ---------------------------------------------------------------- follow-ups of a result

FollowUp = Callable[[Session, Sequence[OutboundMessage], str], None]


def _invitations_of(db: Session, rows: Sequence[OutboundMessage]) -> dict[int, Invitation]:
    """Outbound row id → the invitation it was sent for (one query for the whole batch)."""
    pairs = {
        (r.event_id, r.person_id)
        for r in rows
        if r.event_id is not None and r.person_id is not None
    }
    if not pairs:
        return {}
    # Two plain INs rather than a row-value IN: SQLite answers this one from the
    # (event_id, person_id) index, the row-value form by scanning every invitation.
    found = db.scalars(
        select(Invitation).where(
            Invitation.event_id.in_(sorted({event_id for event_id, _ in pairs})),
            Invitation.person_id.in_(sorted({person_id for _, person_id in pairs})),
        )
    )
    by_pair: dict[tuple[int | None, int | None], Invitation] = {
        (i.event_id, i.person_id): i for i in found
    }
    return {
        r.id: by_pair[(r.event_id, r.person_id)]
        for r in rows
        if (r.event_id, r.person_id) in by_pair
    }


def _invitations_sent(db: Session, rows: Sequence[OutboundMessage], worker: str) -> None:
    by_id = {r.id: r for r in rows}
    changes: list[tuple[Any, Mapping[str, Any]]] = []
    entries = []
    for row_id, invitation in _invitations_of(db, rows).items():
        # Already sent: this was a re-send (a fixed address); nothing changes.
        if invitation.status == InvitationStatus.QUEUED:
            entries.append(
                transition(
                    db,
                    invitation,
                    InvitationStatus.SENT,
                    reason=f"invitation mail {row_id} sent",
                    actor=worker,
                )
            )
            sent_at = by_id[row_id].sent_at or now()
            changes.append((invitation, {"status": InvitationStatus.SENT, "sent_at": sent_at}))
    _write_through(db, changes)
    _insert_audit(db, entries)


def _invitations_undeliverable(db: Session, rows: Sequence[OutboundMessage], worker: str) -> None:
    for row_id, invitation in _invitations_of(db, rows).items():
        if invitation.status == InvitationStatus.QUEUED:
            row = next(r for r in rows if r.id == row_id)
            invitation.bounce_reason = row.last_error
            transition(
                db,
                invitation,
                InvitationStatus.UNDELIVERABLE,
                reason=f"invitation mail {row_id} failed: {row.last_error}",
                actor=worker,
            )


# What else changes when mail of a kind is sent, or fails for good.
AFTER_SENT: Mapping[str, FollowUp] = {MailKind.INVITATION.value: _invitations_sent}
AFTER_FAILED: Mapping[str, FollowUp] = {MailKind.INVITATION.value: _invitations_undeliverable}


def _follow_up_sent(db: Session, rows: Sequence[OutboundMessage], worker: str) -> None:
    for kind, follow_up in AFTER_SENT.items():
        of_kind = [r for r in rows if r.kind == kind]
        if of_kind:
            follow_up(db, of_kind, worker)


def after_failure(db: Session, row: OutboundMessage, worker: str) -> None:
    follow_up = AFTER_FAILED.get(row.kind)
    if follow_up is not None:
        follow_up(db, [row], worker)


# ------------------------------------------------------------------ the organiser's view


def outbox_rows(
    db: Session, event: Event, status: OutboundStatus | None = None, limit: int = 200
) -> Sequence[OutboundMessage]:
    """An event's outbox, newest first, without the (large) message bytes."""
    query = (
        select(OutboundMessage)
        .where(OutboundMessage.event_id == event.id)
        .order_by(OutboundMessage.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(OutboundMessage.status == status)
    return db.scalars(query).all()


def retry_failed(db: Session, outbound_id: int, *, actor: str) -> OutboundMessage:
    """The organiser asks to try a failed mail again: pending, due now, attempts reset."""
    row = db.get(OutboundMessage, outbound_id)
    if row is None:
        raise NotFound(f"outbox message {outbound_id} does not exist")
    if row.status != OutboundStatus.FAILED:
        raise RsvpError(
            f"outbox message {outbound_id} is {row.status}, not failed; only failed mail "
            "can be retried"
        )
    previous_error = row.last_error
    row.attempts = 0
    row.next_attempt_at = now()
    transition(
        db, row, OutboundStatus.PENDING, reason=f"retry asked (was: {previous_error})", actor=actor
    )
    return row


def _domain(address: str) -> str:
    return address.rpartition("@")[2]
