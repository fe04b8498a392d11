"""Queueing mail: the only way any rule sends anything.

A rule calls `queue_mail()` inside the transaction that changes state, so the change and the
mail it causes commit together or not at all (the outbox pattern). The message is rendered
now, with a Message-ID derived from the idempotency key, and sent later by the outbox job.
Queueing the same key twice is a no-op: re-processing a message never mails twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Column, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from db.models import (
    AutoAnswerCount,
    Base,
    Event,
    InboundMessage,
    Invitation,
    OutboundBody,
    OutboundMessage,
    OutboundStatus,
    Participant,
    Person,
)
from workflows.clock import now


class MailKind(StrEnum):
    """Every kind of mail rsvpmail sends; each is one template in mail_templates/."""

    INVITATION = "invitation"
    REGISTRATION_CONFIRMED = "registration_confirmed"
    COMPANION_CONFIRMED = "companion_confirmed"
    SUBSTITUTE_CONFIRMED = "substitute_confirmed"
    WAITLISTED = "waitlisted"
    SEAT_OFFERED = "seat_offered"
    OFFER_EXPIRED = "offer_expired"
    DECLINED_ACK = "declined_ack"
    CANCELLATION_CONFIRMED = "cancellation_confirmed"
    TENTATIVE_ACK = "tentative_ack"
    CHOOSE_SESSION = "choose_session"
    SESSION_CONFIRMED = "session_confirmed"
    REGISTRATION_CLOSED = "registration_closed"
    QUESTION_FORWARDED = "question_forwarded"  # to the event's contact person
    QUESTION_ACK = "question_ack"  # to the person who asked
    REMINDER = "reminder"
    NUDGE_UNANSWERED = "nudge_unanswered"
    FOLLOWUP_ATTENDED = "followup_attended"
    FOLLOWUP_ABSENT = "followup_absent"
    ORGANISER_NOTICE = "organiser_notice"  # freed seat after deadline, bounces, loop cap
    UNSUBSCRIBE_ACK = "unsubscribe_ack"


# Mail an unsubscribed person still gets: answers to what they themselves asked for.
NON_ESSENTIAL = frozenset(
    {
        MailKind.REMINDER,
        MailKind.NUDGE_UNANSWERED,
        MailKind.FOLLOWUP_ATTENDED,
        MailKind.FOLLOWUP_ABSENT,
        MailKind.INVITATION,
    }
)


_Row = TypeVar("_Row", bound=Base)

_ON_CONFLICT_INSERT: Mapping[str, Any] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def can_insert_ignoring_conflicts(db: Session) -> bool:
    """Whether `insert_new_row` works here (SQLite, PostgreSQL); else use a savepoint."""
    return db.get_bind().dialect.name in _ON_CONFLICT_INSERT


def insert_new_row(
    db: Session, model: type[_Row], values: Mapping[str, Any], *, not_returned: str = ""
) -> _Row | None:
    """Insert a row unless it breaks a unique key; the new row, attached to `db`, or None.

    One Core INSERT … ON CONFLICT DO NOTHING RETURNING, instead of a savepoint around a
    unit-of-work flush: the loser of a race gets None and the caller's transaction goes on.
    The row object is put together from the columns the database returns (so it reads as if
    it had been loaded); `not_returned` names one the caller holds already (large bytes), so
    they do not travel back.
    """
    statement = _insert_returning(db.get_bind().dialect.name, model, not_returned)
    stored = db.connection().execute(statement, dict(values)).one_or_none()
    if stored is None:
        return None
    loaded = dict(zip(_attribute_keys(model, not_returned), stored, strict=True))
    if not_returned:
        loaded[not_returned] = values[not_returned]
    row = model(**loaded)
    make_transient_to_detached(row)  # persistent as loaded: no INSERT, no UPDATE of its own
    db.add(row)
    return row


def _returned_columns(model: type[Any], not_returned: str) -> list[Column[Any]]:
    mapper = inspect(model)
    return [c for c in mapper.columns if mapper.get_property_by_column(c).key != not_returned]


def _attribute_keys(model: type[Any], not_returned: str) -> list[str]:
    mapper = inspect(model)
    return [mapper.get_property_by_column(c).key for c in _returned_columns(model, not_returned)]


@lru_cache(maxsize=32)
def _insert_returning(dialect: str, model: type[Any], not_returned: str) -> Any:
    table = inspect(model).local_table
    return (
        _ON_CONFLICT_INSERT[dialect](table)
        .on_conflict_do_nothing()
        .returning(*_returned_columns(model, not_returned))
    )


def message_id_for(key: str, domain: str) -> str:
    """Deterministic Message-ID: a crash and retry of the same row sends the same ID."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}.rsvpmail@{domain}>"


def queue_mail(
    db: Session,
    *,
    key: str,
    kind: MailKind,
    event: Event,
    person: Person | None,
    recipient: str | None = None,
    participant: Participant | None = None,
    invitation: Invitation | None = None,
    extra: Mapping[str, Any] | None = None,
    in_reply_to: InboundMessage | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> OutboundMessage | None:
    """Render and queue one mail unless `key` was queued before; returns the row or None.

    `recipient` defaults to the person's address (organiser notices go to the contact).
    `attachments` are (filename, mime type, bytes), e.g. the original of a forwarded question.
    """
    if db.scalar(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == key)):
        return None
    from mail_templates import build_message_bytes  # templates import models; import late

    to = (recipient or (person.email if person else "")).lower()
    if not to:
        raise ValueError(f"mail {key!r} has no recipient")
    if in_reply_to is not None and not answer_allowed(db, event, in_reply_to, to):
        return None
    domain = event.reply_address.partition("@")[2] or "rsvpmail.invalid"
    message_id = message_id_for(key, domain)
    raw = build_message_bytes(
        kind,
        event=event,
        person=person,
        recipient=to,
        participant=participant,
        invitation=invitation,
        extra=dict(extra or {}),
        message_id=message_id,
        in_reply_to=_reply_ids(in_reply_to),
        attachments=attachments,
    )
    values = {
        "idempotency_key": key,
        "kind": kind.value,
        "event_id": event.id,
        "person_id": person.id if person else None,
        "recipient": to,
        "message_id": message_id,
        "essential": kind not in NON_ESSENTIAL,
        "in_reply_to_id": in_reply_to.id if in_reply_to else None,
        "status": OutboundStatus.PENDING,
        "next_attempt_at": now(),
    }
    return _insert_once(db, values, raw)


def _insert_once(db: Session, values: dict[str, Any], raw: bytes) -> OutboundMessage | None:
    """Insert the row and its body unless a concurrent worker queued the same key first.

    INSERT … ON CONFLICT DO NOTHING RETURNING on SQLite and PostgreSQL: the loser of a race
    gets no row back and the caller's transaction goes on. (Two statements per mail instead
    of a savepoint around a unit-of-work flush, which cost more than rendering the mail.)
    """
    if not can_insert_ignoring_conflicts(db):
        return add_in_savepoint(db, OutboundMessage(**values, raw=raw))
    row = insert_new_row(db, OutboundMessage, values)
    if row is None:
        return None
    # A plain INSERT: `row.body` (and so `row.raw`) loads it when someone asks, which the
    # queueing of a batch never does.
    db.connection().execute(insert(OutboundBody), {"outbound_id": row.id, "raw": raw})
    return row


def add_in_savepoint(db: Session, row: _Row) -> _Row | None:
    """`insert_new_row` where the dialect has no ON CONFLICT: the row, or None when it
    breaks a unique key. A savepoint, so a concurrent worker that stored the same row first
    costs us only this insert, not the caller's whole transaction."""
    try:
        with db.begin_nested():
            db.add(row)
    except IntegrityError:
        return None
    return row


def answer_allowed(db: Session, event: Event, inbound: InboundMessage, to: str) -> bool:
    """The loop brake for answers to an inbound message (RFC 3834 and a daily cap).

    Automatic mail is never answered. Beyond that, each address gets at most the event's
    `max_answers_per_sender_per_day` answers a day, so two mail robots that slip past the
    automatic-mail checks still stop after a few rounds; the organiser is told once a day.
    """
    reading = inbound.classification or {}
    if reading.get("is_automatic") or reading.get("kind") in ("auto_reply", "bounce"):
        return False
    if to != (inbound.from_address or "").lower():
        return True  # not an answer to the sender (e.g. a forward to the contact person)
    cap = int(event.config.get("max_answers_per_sender_per_day", 5) or 5)
    day = now().date()
    counter = db.get(AutoAnswerCount, (to, day), with_for_update=True)
    if counter is None:
        try:
            with db.begin_nested():
                counter = AutoAnswerCount(sender=to, day=day, count=0, reported=False)
                db.add(counter)
        except IntegrityError:  # another worker counted first; use its row
            counter = db.get_one(AutoAnswerCount, (to, day), with_for_update=True)
    if counter.count >= cap:
        if not counter.reported:
            counter.reported = True
            _report_loop(db, event, to, cap, day.isoformat())
        return False
    counter.count += 1
    return True


def _report_loop(db: Session, event: Event, sender: str, cap: int, day: str) -> None:
    queue_mail(
        db,
        key=f"loop-brake:{event.id}:{sender}:{day}",
        kind=MailKind.ORGANISER_NOTICE,
        event=event,
        person=None,
        recipient=event.contact_email,
        # Written by the template in the event's language (mail_templates/*/_notices.txt.j2).
        extra={"notice": "loop_brake", "sender": sender, "cap": cap},
    )


def _reply_ids(inbound: InboundMessage | None) -> tuple[str, ...]:
    """Message-IDs for In-Reply-To (first) and References of an answer to `inbound`."""
    if inbound is None:
        return ()
    ids = [inbound.message_id]
    refs = (inbound.classification or {}).get("references", [])
    return tuple(ids + [r for r in refs if r != inbound.message_id])
