"""The status machines and the one function through which every status changes.

Each machine lists its legal moves; `transition()` refuses anything else and writes an audit
row in the same transaction, naming who did it, why, and the message that caused it. Nothing
else in the code assigns a `.status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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
from workflows.errors import IllegalTransition

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
    _N.QUARANTINED: frozenset({_N.RECEIVED}),  # released for another try
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
    if new not in machine.moves.get(old, frozenset()):
        raise IllegalTransition(machine.name, str(old), str(new))
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


def _event_id(obj: object) -> int | None:
    value = getattr(obj, "event_id", None)
    return value if isinstance(value, int) else None


def _person_id(obj: object) -> int | None:
    value = getattr(obj, "person_id", None)
    return value if isinstance(value, int) else None
