"""Cases the property tests (test_registration_properties.py) found, kept as plain examples
so they run every time, whatever hypothesis happens to draw."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from db.models import InboundMessage, InboundStatus, Participant, ParticipantStatus
from tests.factories import event_config
from tests.mailfactory import ManualClock, World, installed_clock
from workflows.inbound import list_review
from workflows.understanding import PersonMention, ReplyKind

P = ParticipantStatus


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with installed_clock(datetime(2023, 1, 21, 9, 0, tzinfo=UTC)) as c:
        yield c


def _world(db: Session, clock: ManualClock, *, wonen_capacity: int) -> World:
    sessions = tuple(
        dataclasses.replace(s, capacity=wonen_capacity if s.key == "wonen" else None)
        for s in event_config().sessions
    )
    return World(db, clock, slug="second-yes", capacity=3, sessions=sessions, max_companions=2)


def _in_session(w: World, key: str) -> int:
    return sum(
        1
        for p in w.participants()
        if p.status in (P.REGISTERED, P.OFFERED) and p.session is not None and p.session.key == key
    )


def _registered_with_a_companion(w: World) -> Participant:
    invitee = w.invitee(domain="ex-1.example")
    w.tell(invitee, ReplyKind.ACCEPT, companions=(PersonMention("Karin Smit", None),))
    w.db.commit()
    return invitee


def _yes_to_wonen_with_one_more(w: World, invitee: Participant) -> InboundMessage:
    """ "Ja, deelsessie wonen, en ik neem nog een collega mee." """
    companion = PersonMention("Joost de Vries", None)
    reply = w.tell(invitee, ReplyKind.ACCEPT, session="wonen", companions=(companion,))
    w.db.commit()
    return reply


def test_a_second_yes_that_moves_the_party_and_adds_a_companion_is_checked_as_one(
    db: Session, clock: ManualClock
) -> None:
    # Found by hypothesis: registered with one companion and no deelsessie, then "ja, wonen,
    # met nog een collega". Moving the two fits wonen (2 places) and so does one newcomer,
    # but not all three: the reply must go to review and change nothing.
    w = _world(db, clock, wonen_capacity=2)
    invitee = _registered_with_a_companion(w)
    before = w.snapshot()

    reply = _yes_to_wonen_with_one_more(w, invitee)

    assert reply.status is InboundStatus.REVIEW
    [item] = list_review(db, w.event)
    assert item.inbound_id == reply.id and "wonen" in item.reason
    assert w.snapshot()[0] == before[0]  # nobody moved, nobody added
    assert _in_session(w, "wonen") == 0


def test_the_same_reply_is_applied_when_the_session_has_room_for_all(
    db: Session, clock: ManualClock
) -> None:
    w = _world(db, clock, wonen_capacity=3)
    invitee = _registered_with_a_companion(w)

    reply = _yes_to_wonen_with_one_more(w, invitee)

    assert reply.status is InboundStatus.PROCESSED
    assert _in_session(w, "wonen") == 3


@pytest.mark.parametrize(
    "text",
    [
        "Ik kom graag, deelsessie onderwijs. Mijn collega Jan Bos wil naar werk.",
        "Ik kan niet niet komen natuurlijk! Deelsessie onderwijs graag.",
        "I'll be there, probably the education session.",
    ],
)
def test_an_unsure_second_reply_with_a_session_changes_nothing(
    db: Session, clock: ManualClock, text: str
) -> None:
    # Found by a review of the parser: an unclear reply that still named a session was
    # applied to someone registered as a change of session, and what made it unclear (a
    # colleague who wants to come, a double negation, a hedge) never reached a human.
    w = _world(db, clock, wonen_capacity=3)
    invitee = w.invitee(domain="ex-2.example")
    w.tell(invitee, ReplyKind.ACCEPT, session="wonen")
    w.db.commit()
    before = w.snapshot()

    reply = w.say(invitee, text)
    w.db.commit()

    assert reply.status is InboundStatus.REVIEW
    assert w.snapshot()[0] == before[0]
    assert _in_session(w, "wonen") == 1
