"""The waitlist rule at its edges, found by a review of the "first party that fits" change:
room a substitute or an accepted offer frees or takes, a reload that changes capacity and a
deelsessie at once, and an offered party that must not be split."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.models import ParticipantStatus
from tests.factories import event_config, sessions_with_capacity
from tests.mailfactory import ManualClock, World
from workflows.events import load_event
from workflows.seats import seats_taken
from workflows.understanding import PersonMention, ReplyKind

P = ParticipantStatus
ACCEPT, DECLINE = ReplyKind.ACCEPT, ReplyKind.DECLINE


def test_reload_lowering_capacity_and_widening_a_session_does_not_offer_over_capacity(
    db: Session, clock: ManualClock
) -> None:
    # capacity 3, wonen has 1 place: a holds it, b waits for wonen, c sits in werk.
    w = World(db, clock, capacity=3, sessions=sessions_with_capacity(wonen=1))
    a, b, c = w.invitee(), w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="wonen")
    w.tell(c, ACCEPT, session="werk")
    assert w.statuses(a, b, c) == [P.REGISTERED, P.WAITLISTED, P.REGISTERED]

    # The organiser edits the file: capacity 3 -> 2, wonen 1 -> 2 (one load).
    load_event(db, event_config(capacity=2, sessions=sessions_with_capacity(wonen=2)))
    db.commit()
    db.refresh(w.event)
    assert w.event.capacity == 2
    # Two seats, two held: b must not be offered a third seat.
    assert w.status(b) is P.WAITLISTED
    assert seats_taken(db, w.event) <= w.event.capacity


def test_a_substitute_in_another_session_offers_the_place_the_invitee_held(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    a, waiting = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(waiting, ACCEPT, session="wonen")
    assert w.statuses(a, waiting) == [P.REGISTERED, P.WAITLISTED]
    # a sends a colleague in their place, who goes to werk: wonen's one place is free now.
    w.tell(a, DECLINE, substitute=PersonMention("Jan de Boer", "jan@gemeente9.example", "werk"))
    assert w.status(a) is P.CANCELLED
    # Offers are allowed, wonen has a place and 8 event seats are free: the waiting party fits.
    assert w.status(waiting) is P.OFFERED


def test_a_waiting_invitees_substitute_in_a_session_with_room_is_offered(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    a, waiting = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(waiting, ACCEPT, session="wonen")
    # The waiting invitee sends a substitute who wants werk (room there and in the event).
    w.tell(
        waiting, DECLINE, substitute=PersonMention("Piet Jansen", "piet@gemeente9.example", "werk")
    )
    sub = next(p for p in w.participants() if p.person.email == "piet@gemeente9.example")
    # As `choose_session` from the waitlist does: a waiting party that fits is offered.
    assert w.status(sub) is P.OFFERED


def test_a_companion_follows_the_inviter_who_takes_the_offer_in_another_session(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=2)
    r1, r2, head = w.invitee(), w.invitee(), w.invitee()
    w.tell(r1, ACCEPT, session="wonen")
    w.tell(r2, ACCEPT, session="wonen")
    w.tell(head, ACCEPT, session="wonen", companions=(PersonMention("Kees", "kees@x.example"),))
    (companion,) = w.companions(head)
    assert w.statuses(head, companion) == [P.WAITLISTED, P.WAITLISTED]
    w.tell(r1, DECLINE, mentions_cancellation=True)
    w.tell(r2, DECLINE, mentions_cancellation=True)
    assert w.statuses(head, companion) == [P.OFFERED, P.OFFERED]
    w.tell(head, ACCEPT, session="werk")  # takes the offer, in werk
    assert w.statuses(head, companion) == [P.REGISTERED, P.REGISTERED]
    db.refresh(head)
    db.refresh(companion)
    assert head.session is not None and head.session.key == "werk"
    # The companion chose no deelsessie of their own (they were in the inviter's): they follow,
    # as `_set_session` does for every other move.
    assert companion.session is not None and companion.session.key == "werk"


def test_a_companion_taking_the_offer_does_not_split_the_offered_party(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=2)
    r1, r2, head = w.invitee(), w.invitee(), w.invitee()
    w.tell(r1, ACCEPT, session="wonen")
    w.tell(r2, ACCEPT, session="wonen")
    w.tell(head, ACCEPT, session="wonen", companions=(PersonMention("Kees", "kees@x.example"),))
    (companion,) = w.companions(head)
    w.tell(r1, DECLINE, mentions_cancellation=True)
    w.tell(r2, DECLINE, mentions_cancellation=True)
    assert w.statuses(head, companion) == [P.OFFERED, P.OFFERED]
    w.tell(companion, ACCEPT)  # the colleague answers the offer (with their own token)
    # Offered together, registered together (or a human decides): never one of the two.
    assert w.status(head) == w.status(companion)


def test_a_registered_invitee_adds_a_colleague_in_room_no_waiting_party_fits(
    db: Session, clock: ManualClock
) -> None:
    # Someone waits for a full wonen; werk has room. A colleague added to a party in werk
    # takes nothing the waiting party could use: added, not sent to review.
    w = World(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1), max_companions=2)
    in_wonen, waiting, in_werk = w.invitee(), w.invitee(), w.invitee()
    w.tell(in_wonen, ACCEPT, session="wonen")
    w.tell(waiting, ACCEPT, session="wonen")
    w.tell(in_werk, ACCEPT, session="werk")
    assert w.statuses(in_wonen, waiting, in_werk) == [P.REGISTERED, P.WAITLISTED, P.REGISTERED]

    reply = w.tell(in_werk, ACCEPT, companions=(PersonMention("Karin Smit", "k@x.example"),))

    assert reply.status.value == "processed"
    [karin] = w.companions(in_werk)
    assert w.statuses(karin, waiting) == [P.REGISTERED, P.WAITLISTED]
