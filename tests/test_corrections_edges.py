"""Corrections by hand at the edges: found by a review of workflows/corrections.py."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from db.models import ParticipantStatus
from tests.factories import sessions_with_capacity
from tests.mailfactory import ManualClock, World
from workflows.corrections import Answer, offer_by_hand, record_answer
from workflows.errors import RsvpError
from workflows.understanding import PersonMention, ReplyKind

P = ParticipantStatus
ACCEPT, DECLINE = ReplyKind.ACCEPT, ReplyKind.DECLINE
ORG = "organiser:review"


def test_offer_refused_for_a_full_deelsessie_names_the_deelsessie(
    db: Session, clock: ManualClock
) -> None:
    """9 of 10 seats are free, only deelsessie wonen (capacity 1) is full. The refusal says
    "a party of 1, 9 seat(s) free", which reads as if there were room."""
    w = World(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    first, waiting = w.invitee(), w.invitee()
    w.tell(first, ACCEPT, session="wonen")
    w.tell(waiting, ACCEPT, session="wonen")
    assert w.statuses(first, waiting) == [P.REGISTERED, P.WAITLISTED]
    with pytest.raises(RsvpError) as refused:
        offer_by_hand(db, w.event, waiting.person.email, actor=ORG)
    assert "wonen" in str(refused.value), str(refused.value)


def test_accepting_for_an_offered_companion_does_not_split_the_party(
    db: Session, clock: ManualClock
) -> None:
    """An offer made to a party of two; the organiser records "accept" for the companion.
    For a waiting companion (register by hand, offer by hand) corrections refuse: "a party is
    not split". Here only the companion is registered; the inviter keeps an open offer."""
    w = World(db, clock, capacity=2)
    x, y = w.invitee(), w.invitee()
    w.tell(x, ACCEPT)
    w.tell(y, ACCEPT)
    head = w.invitee()
    w.tell(head, ACCEPT, companions=(PersonMention("Karin Smit", "k.smit@x.example"),))
    [karin] = w.companions(head)
    w.tell(x, DECLINE)
    w.tell(y, DECLINE)
    assert w.statuses(head, karin) == [P.OFFERED, P.OFFERED]

    try:
        record_answer(db, w.event, karin.person.email, answer=Answer.ACCEPT, actor=ORG)
        db.commit()
    except RsvpError:
        db.rollback()  # refused like the waitlist cases: fine
    assert w.statuses(head, karin) in ([P.OFFERED, P.OFFERED], [P.REGISTERED, P.REGISTERED])
