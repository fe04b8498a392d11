"""The status machines and the one function through which every status changes.

Each machine lists its legal moves; `transition()` refuses anything else and writes an audit
row in the same transaction, naming who did it, why, and the message that caused it. Nothing
else in the code assigns a `.status`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Update, bindparam, insert, update
from sqlalchemy.orm import Session

from db.models import (
    AuditEntry,
    InboundMessage,
    InboundStatus,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
)
from workflows.clock import now
from workflows.errors import ConcurrentChange, IllegalTransition

_P = ParticipantStatus
PARTICIPANT_MOVES: Mapping[StrEnum, frozenset[StrEnum]] = {
    _P.INVITED: frozenset({_P.REGISTERED, _P.WAITLISTED, _P.DECLINED}),
    _P.REGISTERED: frozenset({_P.CANCELLED, _P.ATTENDED, _P.NO_SHOW}),
    _P.WAITLISTED: frozenset({_P.OFFERED, _P.REGISTERED, _P.CANCELLED, _P.DECLINED}),
    # "nee" to an offer is a decline; silence is expiry. Both release the seat.
    _P.OFFERED: frozenset({_P.REGISTERED, _P.DECLINED, _P.EXPIRED, _P.CANCELLED}),
    # People change their minds: a later "ja" is handled like a first one.
    _P.DECLINED: frozenset({_P.REGISTERED, _P.WAITLISTED}),
    _P.CANCELLED: frozenset({_P.REGISTERED, _P.WAITLISTED}),
    _P.EXPIRED: frozenset({_P.REGISTERED, _P.WAITLISTED, _P.DECLINED}),
    # After the event only corrections of the attendance list.
    _P.ATTENDED: frozenset({_P.NO_SHOW}),
    _P.NO_SHOW: frozenset({_P.ATTENDED}),
}

_I = InvitationStatus
INVITATION_MOVES: Mapping[StrEnum, frozenset[StrEnum]] = {
    _I.PENDING: frozenset({_I.QUEUED}),
    _I.QUEUED: frozenset({_I.SENT, _I.UNDELIVERABLE}),
    _I.SENT: frozenset({_I.UNDELIVERABLE}),
    _I.UNDELIVERABLE: frozenset({_I.QUEUED}),  # the organiser fixed the address
}

_N = InboundStatus
INBOUND_MOVES: Mapping[StrEnum, frozenset[StrEnum]] = {
    _N.RECEIVED: frozenset({_N.PROCESSED, _N.REVIEW, _N.QUARANTINED}),
    _N.REVIEW: frozenset({_N.PROCESSED}),  # a human decided
    # Released for another try, or dismissed: the organiser handled it by hand (`inbox
    # dismiss`). No status of its own: "processed" already means "nothing left for the
    # service to do", as after a human decided a review item; the resolution says how.
    _N.QUARANTINED: frozenset({_N.RECEIVED, _N.PROCESSED}),
    _N.PROCESSED: frozenset(),
}

_O = OutboundStatus
OUTBOUND_MOVES: Mapping[StrEnum, frozenset[StrEnum]] = {
    _O.PENDING: frozenset({_O.SENDING, _O.SUPPRESSED}),
    _O.SENDING: frozenset({_O.SENT, _O.PENDING, _O.FAILED}),
    _O.FAILED: frozenset({_O.PENDING}),  # the organiser asked for a retry
    _O.SENT: frozenset(),
    _O.SUPPRESSED: frozenset(),
}


@dataclass(frozen=True)
class Machine:
    name: str
    moves: Mapping[StrEnum, frozenset[StrEnum]]


MACHINES: Mapping[type[Any], Machine] = {
    Participant: Machine("participant", PARTICIPANT_MOVES),
    Invitation: Machine("invitation", INVITATION_MOVES),
    InboundMessage: Machine("inbound", INBOUND_MOVES),
    OutboundMessage: Machine("outbound", OUTBOUND_MOVES),
}


def is_legal(obj_type: type[Any], old: StrEnum, new: StrEnum) -> bool:
    return new in MACHINES[obj_type].moves.get(old, frozenset())


def transition(
    db: Session,
    obj: Participant | Invitation | InboundMessage | OutboundMessage,
    new: StrEnum,
    *,
    reason: str,
    actor: str = "system",
    inbound_message_id: int | None = None,
) -> AuditEntry:
    """Move `obj` to `new`, or raise IllegalTransition; always leaves an audit row.

    The caller commits: the change, its audit row and any mail it causes are one transaction.
    """
    machine = MACHINES[type(obj)]
    old = obj.status
    _check_move(machine, old, new)
    obj.status = new  # type: ignore[assignment]
    if obj.id is None:
        db.flush()  # the audit row needs the id
    entry = AuditEntry(
        actor=actor,
        machine=machine.name,
        entity_id=obj.id,
        event_id=_event_id(obj),
        person_id=_person_id(obj),
        old_status=str(old),
        new_status=str(new),
        reason=reason,
        inbound_message_id=inbound_message_id,
    )
    db.add(entry)
    return entry


@dataclass(frozen=True)
class RowMove:
    """One row of a batch move (`transition_rows`): its status now, and what else changes."""

    entity_id: int
    old: StrEnum
    event_id: int | None
    person_id: int | None
    reason: str
    values: Mapping[str, Any] = field(default_factory=dict)


def transition_rows(
    db: Session,
    model: type[Invitation | OutboundMessage],
    moves: Sequence[RowMove],
    new: StrEnum,
    *,
    actor: str,
) -> None:
    """`transition` for a batch of rows, without loading them as objects.

    The outbox sender moves every mail three times; doing that object by object cost more
    than sending the mail. Here the same checks give one UPDATE for all rows (each a
    compare-and-set on the status it was read with) and one INSERT for their audit rows.
    The caller holds the rows (read in this transaction, FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE serialises writers), so a row that changed anyway means a bug or a
    foreign writer: ConcurrentChange, and the transaction is rolled back. Objects of these
    rows already loaded in `db` are not refreshed. All moves must set the same `values` keys.
    """
    if not moves:
        return
    machine = MACHINES[model]
    for move in moves:
        _check_move(machine, move.old, new)
    keys = tuple(moves[0].values)
    parameters = [
        {"_id": m.entity_id, "_old": m.old, **{f"_{key}": m.values[key] for key in keys}}
        for m in moves
    ]
    changed = db.connection().execute(_move_statement(model, new, keys), parameters).rowcount
    if changed != len(moves):
        raise ConcurrentChange(
            f"{machine.name}: {len(moves) - changed} of {len(moves)} rows changed while moving "
            f"them to {new}"
        )
    at = now()
    db.connection().execute(
        insert(AuditEntry),
        [
            {
                "at": at,
                "actor": actor,
                "machine": machine.name,
                "entity_id": m.entity_id,
                "event_id": m.event_id,
                "person_id": m.person_id,
                "old_status": str(m.old),
                "new_status": str(new),
                "reason": m.reason,
                "inbound_message_id": None,
            }
            for m in moves
        ],
    )


@functools.cache
def _move_statement(
    model: type[Invitation | OutboundMessage], new: StrEnum, keys: tuple[str, ...]
) -> Update:
    # Built once per kind of move: building a statement cost more than running it.
    return (
        update(model)
        .where(model.id == bindparam("_id"), model.status == bindparam("_old"))
        .values({"status": new, **{key: bindparam(f"_{key}") for key in keys}})
    )


def record_creation(
    db: Session,
    obj: Participant | Invitation | InboundMessage | OutboundMessage,
    *,
    reason: str,
    actor: str = "system",
    inbound_message_id: int | None = None,
) -> AuditEntry:
    """Audit the first status an object is created with (old status empty)."""
    if obj.id is None:
        db.flush()
    entry = AuditEntry(
        actor=actor,
        machine=MACHINES[type(obj)].name,
        entity_id=obj.id,
        event_id=_event_id(obj),
        person_id=_person_id(obj),
        old_status=None,
        new_status=str(obj.status),
        reason=reason,
        inbound_message_id=inbound_message_id,
    )
    db.add(entry)
    return entry


def _check_move(machine: Machine, old: StrEnum, new: StrEnum) -> None:
    if new not in machine.moves.get(old, frozenset()):
        raise IllegalTransition(machine.name, str(old), str(new))


def _event_id(obj: object) -> int | None:
    value = getattr(obj, "event_id", None)
    return value if isinstance(value, int) else None


def _person_id(obj: object) -> int | None:
    value = getattr(obj, "person_id", None)
    return value if isinstance(value, int) else None
