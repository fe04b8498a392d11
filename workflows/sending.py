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

import functools
import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import BindParameter, Connection, Select, and_, bindparam, func, or_, select, update
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
from workflows.transitions import RowMove, transition, transition_rows

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
    event_id: int | None = None  # for the log line only


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


def due_condition(at: datetime | BindParameter[Any]) -> Any:
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

    def suppressed(self, row: Any) -> bool:
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
        special = [r.id for r in rows if not _is_plain(r, context)]
        _load_bodies(db, plain, context)
        claimed = _claim_plain(db, plain, context)
        # Rare (a dead worker's row, an unsubscribed recipient): handled object by object.
        for row in _objects(db, special):
            _claim_special(db, row, context)
    return claimed


_CANDIDATE_COLUMNS = (
    OutboundMessage.id,
    OutboundMessage.status,
    OutboundMessage.kind,
    OutboundMessage.recipient,
    OutboundMessage.message_id,
    OutboundMessage.event_id,
    OutboundMessage.person_id,
    OutboundMessage.essential,
    OutboundMessage.claimed_by,
    OutboundMessage.sent_at,
    OutboundMessage.attempts,
)


def _lock_candidates(db: Session, at: datetime, limit: int) -> Sequence[Any]:
    """The due rows, as plain rows: a claim writes them with a few statements, no objects."""
    return db.execute(_candidates_query(limit, _on_postgresql(db)), {"at": at}).all()


@functools.cache
def _candidates_query(limit: int, postgresql: bool) -> Select[*tuple[Any, ...]]:
    # Built once per batch size: building a statement took longer than running it.
    query = (
        select(*_CANDIDATE_COLUMNS)
        .where(due_condition(bindparam("at")))
        .order_by(OutboundMessage.next_attempt_at, OutboundMessage.id)
        .limit(limit)
    )
    # On PostgreSQL rows another worker is claiming right now are skipped, not waited for.
    return query.with_for_update(skip_locked=True) if postgresql else query


def _on_postgresql(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def _objects(db: Session, ids: Sequence[int]) -> Sequence[OutboundMessage]:
    if not ids:
        return []
    query = (
        select(OutboundMessage)
        .where(OutboundMessage.id.in_(ids))
        .order_by(OutboundMessage.id)
        .execution_options(populate_existing=True)
    )
    return db.scalars(query).all()


# The claim's and settle's statements, built once (see _candidates_query).
_EVENTS_OF = select(Event.id, Event.organiser, Event.reply_address).where(
    Event.id.in_(bindparam("ids", expanding=True))
)
_UNSUBSCRIPTIONS_OF = select(Unsubscription.person_id, Unsubscription.organiser).where(
    Unsubscription.person_id.in_(bindparam("ids", expanding=True))
)
_BODIES_OF = select(OutboundBody.outbound_id, OutboundBody.raw).where(
    OutboundBody.outbound_id.in_(bindparam("ids", expanding=True))
)
_CLAIM = (
    update(OutboundMessage)
    .where(
        OutboundMessage.id.in_(bindparam("ids", expanding=True)),
        due_condition(bindparam("at")),
        # Accepted just now by a worker whose lease ran out: settle it, never resend.
        OutboundMessage.sent_at.is_(None),
    )
    .values(
        claimed_by=bindparam("worker"),
        lease_until=bindparam("lease_until"),
        attempts=OutboundMessage.attempts + 1,
    )
    .returning(OutboundMessage.id, OutboundMessage.attempts)
)


def _claim_context(
    db: Session,
    rows: Sequence[Any],
    worker: str,
    at: datetime,
    lease_until: datetime,
    policy: RetryPolicy,
) -> _ClaimContext:
    event_ids = sorted({r.event_id for r in rows if r.event_id is not None})
    events = db.execute(_EVENTS_OF, {"ids": event_ids}).all()
    person_ids = sorted({r.person_id for r in rows if not r.essential and r.person_id is not None})
    unsubscribed: set[tuple[int, str]] = set()
    if person_ids:
        pairs = db.execute(_UNSUBSCRIPTIONS_OF, {"ids": person_ids}).all()
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


def _load_bodies(db: Session, rows: Sequence[Any], context: _ClaimContext) -> None:
    """The rendered bytes of the rows about to be sent: one query for the whole batch."""
    if not rows:
        return
    found = db.execute(_BODIES_OF, {"ids": [r.id for r in rows]})
    context.bodies.update({row_id: raw for row_id, raw in found})


def _is_plain(row: Any, context: _ClaimContext) -> bool:
    """Due to go out now: not suppressed, not sent by a dead worker, not given up on."""
    if context.suppressed(row):
        return False
    if row.status != OutboundStatus.SENDING:
        return True
    return row.sent_at is None and row.attempts < context.policy.max_attempts


def _claim_plain(db: Session, rows: Sequence[Any], context: _ClaimContext) -> list[ClaimedMail]:
    """Claim rows that simply go out: a few statements for the whole batch."""
    if not rows:
        return []
    parameters = {
        "ids": [r.id for r in rows],
        "at": context.at,
        "worker": context.worker,
        "lease_until": context.lease_until,
    }
    won = db.connection().execute(_CLAIM, parameters).all()
    attempts_of = {row_id: attempts for row_id, attempts in won}
    ours = [r for r in rows if r.id in attempts_of]  # the others: claimed by someone else
    worker = context.worker
    abandoned = [r for r in ours if r.status == OutboundStatus.SENDING]
    transition_rows(
        db,
        OutboundMessage,
        [
            _move(r, OutboundStatus.SENDING, f"lease of {r.claimed_by} expired; due again")
            for r in abandoned
        ],
        OutboundStatus.PENDING,
        actor=worker,
    )
    claims = [
        _move(r, OutboundStatus.PENDING, f"claimed, attempt {attempts_of[r.id]}") for r in ours
    ]
    transition_rows(db, OutboundMessage, claims, OutboundStatus.SENDING, actor=worker)
    return [_claimed_mail(r, attempts_of[r.id], context) for r in ours]


def _move(row: Any, old: StrEnum, reason: str, values: Mapping[str, Any] | None = None) -> RowMove:
    return RowMove(row.id, old, row.event_id, row.person_id, reason, values or {})


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
        "outbox mail",
        extra={
            "fields": mail_log_fields(
                row.id, row.kind, row.event_id, row.recipient, "suppressed", row.attempts
            )
            | {"reason": "unsubscribed"}
        },
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


def _claimed_mail(row: Any, attempts: int, context: _ClaimContext) -> ClaimedMail:
    raw = context.bodies.get(row.id)
    return ClaimedMail(
        id=row.id,
        kind=row.kind,
        recipient=row.recipient,
        envelope_from=_envelope_from(row, raw, context.reply_addresses),
        message_id=row.message_id,
        raw=raw,
        attempts=attempts,
        lease_until=context.lease_until,
        event_id=row.event_id,
    )


def _envelope_from(row: Any, raw: bytes | None, reply_addresses: Mapping[int, str]) -> str:
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
            "outbox claim lost",
            extra={"fields": {"outbox_id": outbound_id, "worker": worker, "step": "accepted"}},
        )
        return False
    return True


def settle_accepted(db: Session, worker: str, outbound_ids: Sequence[int] | None = None) -> int:
    """Move `worker`'s accepted rows (all, or those in `outbound_ids`) from sending to sent.

    Writes their audit rows and follow-ups in one go; returns how many were settled.
    """
    query = _accepted_query(outbound_ids is not None, _on_postgresql(db))
    parameters = {"worker": worker, "ids": list(outbound_ids or ())}
    rows: Sequence[MailRow] = db.execute(query, parameters).all()
    settled = {"claimed_by": None, "lease_until": None}
    moves = [
        _move(row, OutboundStatus.SENDING, "accepted by the SMTP server", settled) for row in rows
    ]
    transition_rows(db, OutboundMessage, moves, OutboundStatus.SENT, actor=worker)
    _follow_up_sent(db, rows, worker)
    return len(rows)


@functools.cache
def _accepted_query(only_some: bool, postgresql: bool) -> Select[*tuple[Any, ...]]:
    query = (
        select(
            OutboundMessage.id,
            OutboundMessage.kind,
            OutboundMessage.event_id,
            OutboundMessage.person_id,
            OutboundMessage.sent_at,
            OutboundMessage.last_error,
        )
        .where(
            OutboundMessage.status == OutboundStatus.SENDING,
            OutboundMessage.claimed_by == bindparam("worker"),
            OutboundMessage.sent_at.is_not(None),
        )
        .order_by(OutboundMessage.id)
    )
    if only_some:
        query = query.where(OutboundMessage.id.in_(bindparam("ids", expanding=True)))
    return query.with_for_update() if postgresql else query


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
        log.warning(
            "outbox claim lost",
            extra={"fields": {"outbox_id": outbound_id, "worker": worker, "step": "result"}},
        )
    return row


# ---------------------------------------------------------------- follow-ups of a result


class MailRow(Protocol):
    """What a follow-up reads of an outbound row: an OutboundMessage or a plain row."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def event_id(self) -> int | None: ...
    @property
    def person_id(self) -> int | None: ...
    @property
    def sent_at(self) -> datetime | None: ...
    @property
    def last_error(self) -> str | None: ...


FollowUp = Callable[[Session, Sequence[MailRow], str], None]


def _queued_invitations(db: Session, rows: Sequence[MailRow]) -> dict[int, Any]:
    """Outbound row id → the queued invitation it was sent for (one query for the batch).

    An invitation that is no longer queued was re-sent (a fixed address): nothing changes.
    Two mails of one invitation in a batch (a re-send queued while the first was still
    pending) move it once, for the first of them, as moving it object by object did.
    """
    pairs = {
        (r.event_id, r.person_id)
        for r in rows
        if r.event_id is not None and r.person_id is not None
    }
    if not pairs:
        return {}
    # Two plain INs rather than a row-value IN: SQLite answers this one from the
    # (event_id, person_id) index, the row-value form by scanning every invitation.
    parameters = {
        "events": sorted({event_id for event_id, _ in pairs}),
        "persons": sorted({person_id for _, person_id in pairs}),
    }
    found = db.execute(_queued_invitations_query(_on_postgresql(db)), parameters)
    by_pair = {(i.event_id, i.person_id): i for i in found}
    first_row_of: dict[int, tuple[int, Any]] = {}
    for r in sorted(rows, key=lambda r: r.id):
        invitation = by_pair.get((r.event_id, r.person_id))
        if invitation is not None:
            first_row_of.setdefault(invitation.id, (r.id, invitation))
    return dict(first_row_of.values())


@functools.cache
def _queued_invitations_query(postgresql: bool) -> Select[*tuple[Any, ...]]:
    query = select(Invitation.id, Invitation.event_id, Invitation.person_id).where(
        Invitation.event_id.in_(bindparam("events", expanding=True)),
        Invitation.person_id.in_(bindparam("persons", expanding=True)),
        Invitation.status == InvitationStatus.QUEUED,
    )
    # In id order, so workers settling at the same time lock rows in one order, never crosswise.
    return query.order_by(Invitation.id).with_for_update() if postgresql else query


def _invitations_sent(db: Session, rows: Sequence[MailRow], worker: str) -> None:
    sent_at = {r.id: r.sent_at or now() for r in rows}
    moves = [
        _move(invitation, InvitationStatus.QUEUED, f"invitation mail {row_id} sent",
              {"sent_at": sent_at[row_id]})
        for row_id, invitation in _queued_invitations(db, rows).items()
    ]  # fmt: skip
    transition_rows(db, Invitation, moves, InvitationStatus.SENT, actor=worker)


def _invitations_undeliverable(db: Session, rows: Sequence[MailRow], worker: str) -> None:
    error = {r.id: r.last_error for r in rows}
    moves = [
        _move(invitation, InvitationStatus.QUEUED,
              f"invitation mail {row_id} failed: {error[row_id]}",
              {"bounce_reason": error[row_id]})
        for row_id, invitation in _queued_invitations(db, rows).items()
    ]  # fmt: skip
    transition_rows(db, Invitation, moves, InvitationStatus.UNDELIVERABLE, actor=worker)


# What else changes when mail of a kind is sent, or fails for good.
AFTER_SENT: Mapping[str, FollowUp] = {MailKind.INVITATION.value: _invitations_sent}
AFTER_FAILED: Mapping[str, FollowUp] = {MailKind.INVITATION.value: _invitations_undeliverable}


def _follow_up_sent(db: Session, rows: Sequence[MailRow], worker: str) -> None:
    for kind, follow_up in AFTER_SENT.items():
        of_kind = [r for r in rows if r.kind == kind]
        if of_kind:
            follow_up(db, of_kind, worker)


def after_failure(db: Session, row: OutboundMessage, worker: str) -> None:
    follow_up = AFTER_FAILED.get(row.kind)
    if follow_up is not None:
        db.flush()  # the row's last_error, set as an object, is read back as a row
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


_ERROR_CODE = re.compile(r"\s*(\d{3})\b|\s*([A-Za-z_][\w.]*(?:Error|Exception|Timeout)\w*):")


def error_code(detail: str) -> str:
    """The SMTP reply code (`550`) or the error class (`TimeoutError`) of a send result.

    Only that goes into a log line: an SMTP reply text may repeat the full address.
    """
    match = _ERROR_CODE.match(detail)
    if match is None:
        return "-"
    return match.group(1) or match.group(2)


def mail_log_fields(
    outbox_id: int,
    kind: str,
    event_id: int | None,
    recipient: str,
    outcome: str,
    attempts: int,
    error: str = "-",
) -> dict[str, object]:
    """The fields of the one `outbox mail` log line per mail outcome: never the full address."""
    return {
        "outbox_id": outbox_id,
        "kind": kind,
        "event_id": event_id if event_id is not None else "-",
        "recipient_domain": _domain(recipient) or "-",
        "outcome": outcome,
        "attempts": attempts,
        "error": error,
    }
