"""Every legal and every illegal move of each status machine, and the audit row each leaves."""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import func, select
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
from tests.factories import invite, make_event
from workflows.clock import now
from workflows.errors import IllegalTransition
from workflows.transitions import MACHINES, transition

STATUS_ENUMS: dict[type[Any], type[StrEnum]] = {
    Participant: ParticipantStatus,
    Invitation: InvitationStatus,
    InboundMessage: InboundStatus,
    OutboundMessage: OutboundStatus,
}


def test_every_status_of_every_machine_has_an_entry() -> None:
    for model, enum in STATUS_ENUMS.items():
        assert set(MACHINES[model].moves) == set(enum), model.__name__


def test_no_machine_allows_staying_in_place() -> None:
    for machine in MACHINES.values():
        for old, targets in machine.moves.items():
            assert old not in targets, f"{machine.name}: {old} → {old}"


class _Builder:
    """Creates one object per (model, status) in a shared event."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.event = make_event(db)
        self.n = 0

    def build(self, model: type[Any], status: StrEnum) -> Any:
        self.n += 1
        n = self.n
        if model in (Participant, Invitation):
            invitation, participant = invite(self.db, self.event, f"p{n}@gemeente.example")
            obj = participant if model is Participant else invitation
            obj.status = status
            if status is ParticipantStatus.WAITLISTED:
                participant.waitlist_seq = n
            if status is ParticipantStatus.OFFERED:
                participant.offer_expires_at = now()
        elif model is InboundMessage:
            obj = InboundMessage(message_id=f"<m{n}@x.example>", status=status, raw=b"x")
        else:
            obj = OutboundMessage(
                idempotency_key=f"k{n}",
                kind="test",
                recipient="a@b.example",
                message_id=f"<o{n}@rsvpmail>",
                status=status,
                raw=b"x",
            )
        self.db.add(obj)
        self.db.flush()
        return obj


def _prepare_for(obj: Any, new: StrEnum, n: int) -> None:
    """Set what the target status requires, as the rules do before they move a participant."""
    if new is ParticipantStatus.WAITLISTED:
        obj.waitlist_seq = 10_000 + n
    if new is ParticipantStatus.OFFERED:
        obj.offer_expires_at = now()


@pytest.mark.parametrize("model", list(STATUS_ENUMS), ids=lambda m: m.__name__)
def test_legal_moves_change_status_and_write_audit(db: Session, model: type[Any]) -> None:
    builder = _Builder(db)
    machine = MACHINES[model]
    for old, targets in machine.moves.items():
        for new in targets:
            obj = builder.build(model, old)
            _prepare_for(obj, new, builder.n)
            entry = transition(db, obj, new, reason=f"test {old}->{new}", actor="tester")
            db.flush()
            assert obj.status == new
            stored = db.get(AuditEntry, entry.id)
            assert stored is not None
            assert (stored.machine, stored.entity_id) == (machine.name, obj.id)
            assert (stored.old_status, stored.new_status) == (str(old), str(new))
            assert stored.actor == "tester"
    db.commit()


@pytest.mark.parametrize("model", list(STATUS_ENUMS), ids=lambda m: m.__name__)
def test_illegal_moves_raise_and_change_nothing(db: Session, model: type[Any]) -> None:
    builder = _Builder(db)
    machine = MACHINES[model]
    enum = STATUS_ENUMS[model]
    illegal = [
        (old, new) for old, new in itertools.product(enum, enum) if new not in machine.moves[old]
    ]
    assert illegal, "every machine has moves it forbids"
    for old, new in illegal:
        obj = builder.build(model, old)
        audit_before = db.scalar(select(func.count()).select_from(AuditEntry))
        with pytest.raises(IllegalTransition) as raised:
            transition(db, obj, new, reason="should fail")
        assert obj.status == old
        assert raised.value.old == str(old) and raised.value.new == str(new)
        assert db.scalar(select(func.count()).select_from(AuditEntry)) == audit_before
