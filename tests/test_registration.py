"""The registration rules, driven by real reply mails (parser included) or by given readings.

Each test runs on SQLite and on PostgreSQL (the `db` fixture). Replies in plain Dutch go
through record_inbound + process_inbound; cases the parser's wording would only obscure
(exact companions, substitutes) give the Understanding directly via process_understood.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db.models import (
    AuditEntry,
    EventSession,
    InboundStatus,
    Invitation,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Unsubscription,
)
from tests.mailfactory import ManualClock, World
from workflows.clock import now
from workflows.event_config import SessionSpec
from workflows.registration import (
    PLACEHOLDER_DOMAIN,
    change_capacity,
    expire_offers,
    has_mailbox,
    promote,
)
from workflows.seats import seats_left, seats_taken, waitlist_position
from workflows.transitions import transition
from workflows.understanding import PersonMention, ReplyKind

P = ParticipantStatus
ACCEPT, DECLINE = ReplyKind.ACCEPT, ReplyKind.DECLINE


def world(db: Session, clock: ManualClock, **overrides: object) -> World:
    return World(db, clock, **overrides)


def fill(w: World, n: int) -> list[Participant]:
    """n invitees who all said yes (registered while seats last)."""
    people = [w.invitee() for _ in range(n)]
    for p in people:
        w.tell(p, ACCEPT, session="wonen")
    return people


# --------------------------------------------------------------------------- accept


def test_accept_registers_confirms_and_asks_for_a_session_once(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=5)
    p = w.invitee("Lotte El Amrani")
    inbound = w.say(p, "Ja, ik kom graag.")
    assert inbound.status is InboundStatus.PROCESSED
    assert w.status(p) is P.REGISTERED
    assert w.kinds_to(p) == ["registration_confirmed", "choose_session"]
    assert p.session_asked_at == now()
    w.say(p, "Ja hoor, ik ben erbij!")
    assert w.kinds_to(p).count("choose_session") == 1
    assert seats_taken(db, w.event) == 1


def test_accept_with_session_registers_in_it_without_asking(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock)
    p = w.invitee()
    w.say(p, "Ja, ik kom graag, deelsessie wonen.")
    assert w.status(p) is P.REGISTERED
    assert p.session is not None and p.session.key == "wonen"
    assert w.kinds_to(p) == ["registration_confirmed"]


def test_accept_when_full_waitlists_in_arrival_order_with_positions(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=2)
    fill(w, 2)
    late1, late2 = w.invitee(), w.invitee()
    w.say(late1, "Ja, ik kom graag.")
    w.say(late2, "Ja, ik kom graag.")
    assert w.statuses(late1, late2) == [P.WAITLISTED, P.WAITLISTED]
    assert late1.waitlist_seq is not None and late2.waitlist_seq is not None
    assert late1.waitlist_seq < late2.waitlist_seq
    positions = [w.mails("waitlisted", to=p.person.email)[0] for p in (late1, late2)]
    assert [m.kind for m in positions] == ["waitlisted", "waitlisted"]
    assert b"1" in (
        positions[0].raw or b""
    )  # position is rendered; exact wording is the template's


def test_second_accept_of_a_registered_person_takes_no_second_seat(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=3)
    p = w.invitee()
    w.say(p, "Ja, ik kom graag, deelsessie wonen.")
    w.say(p, "Ja, ik kom graag, deelsessie werk.")
    assert w.status(p) is P.REGISTERED
    assert p.session is not None and p.session.key == "werk"
    assert seats_taken(db, w.event) == 1
    assert "session_confirmed" in w.kinds_to(p)


def test_reply_naming_only_a_session_sets_it(db: Session, clock: ManualClock) -> None:
    w = world(db, clock)
    p = w.invitee()
    w.say(p, "Ja, ik kom graag.")
    inbound = w.say(p, "Wonen.")
    assert inbound.status is InboundStatus.PROCESSED
    db.refresh(p)
    assert p.session is not None and p.session.key == "wonen"
    assert w.kinds_to(p)[-1] == "session_confirmed"


def test_session_change_into_a_full_session_goes_to_review(db: Session, clock: ManualClock) -> None:
    sessions = sessions_with_capacity(wonen=1)
    w = world(db, clock, sessions=sessions)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="werk")
    inbound = w.tell(b, ReplyKind.UNCLEAR, session="wonen")
    assert inbound.status is InboundStatus.REVIEW
    db.refresh(b)
    assert b.session is not None and b.session.key == "werk"


def test_session_capacity_limits_registration(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="wonen")
    assert w.statuses(a, b) == [P.REGISTERED, P.WAITLISTED]


def test_a_move_out_of_a_full_session_offers_its_place(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    moving, waiting = w.invitee(), w.invitee()
    w.tell(moving, ACCEPT, session="wonen")
    w.tell(waiting, ACCEPT, session="wonen")
    w.tell(moving, ACCEPT, session="werk")  # a registered person moves: wonen has a place
    assert w.statuses(moving, waiting) == [P.REGISTERED, P.OFFERED]
    assert [m.recipient for m in w.mails("seat_offered")] == [waiting.person.email]


def test_a_waiting_person_who_moves_to_a_session_with_room_is_offered(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    in_wonen, waiting = w.invitee(), w.invitee()
    w.tell(in_wonen, ACCEPT, session="wonen")
    w.tell(waiting, ACCEPT, session="wonen")
    inbound = w.tell(waiting, ReplyKind.UNCLEAR, session="werk")
    assert inbound.status is InboundStatus.PROCESSED
    assert w.status(waiting) is P.OFFERED
    assert w.kinds_to(waiting)[-2:] == ["session_confirmed", "seat_offered"]


def test_an_offer_taken_in_another_session_offers_the_place_it_held(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    in_wonen, first, second = w.invitee(), w.invitee(), w.invitee()
    w.tell(in_wonen, ACCEPT, session="wonen")
    w.tell(first, ACCEPT, session="wonen")
    w.tell(second, ACCEPT, session="wonen")
    w.tell(in_wonen, DECLINE, mentions_cancellation=True)
    assert w.statuses(first, second) == [P.OFFERED, P.WAITLISTED]
    w.tell(first, ACCEPT, session="werk")  # takes the offer, but in werk
    assert w.statuses(first, second) == [P.REGISTERED, P.OFFERED]


def test_a_move_after_the_deadline_offers_nothing_and_tells_nobody(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    moving, waiting = w.invitee(), w.invitee()
    w.tell(moving, ACCEPT, session="wonen")
    w.tell(waiting, ACCEPT, session="wonen")
    clock.set(w.event.registration_deadline + timedelta(hours=1))
    w.tell(moving, ReplyKind.UNCLEAR, session="werk")
    assert w.statuses(moving, waiting) == [P.REGISTERED, P.WAITLISTED]
    db.refresh(moving)
    assert moving.session is not None and moving.session.key == "werk"
    assert w.mails("seat_offered") == []
    assert w.mails("organiser_notice") == []  # a move frees no seat of the event


def session_row(db: Session, w: World, key: str) -> EventSession:
    return db.scalars(
        select(EventSession).where(EventSession.event_id == w.event.id, EventSession.key == key)
    ).one()


def sessions_with_capacity(**capacities: int) -> tuple[SessionSpec, ...]:
    from tests.factories import event_config

    return tuple(
        dataclasses.replace(s, capacity=capacities.get(s.key)) for s in event_config().sessions
    )


# --------------------------------------------------------------------------- companions


def test_companion_becomes_person_invitation_and_participant(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=5)
    p = w.invitee("Femke Visser", domain="oosterdijk.example")
    w.say(p, "Ja, ik kom graag met mijn collega Karin Smit, k.smit@oosterdijk.example.")
    assert w.status(p) is P.REGISTERED
    [karin] = w.companions(p)
    assert karin.status is P.REGISTERED
    assert karin.person.email == "k.smit@oosterdijk.example"
    assert karin.person.name == "Karin Smit"
    invitation = db.get(Invitation, karin.invitation_id)
    assert invitation is not None
    assert (invitation.batch, invitation.status) == ("companion", InvitationStatus.SENT)
    assert len(invitation.token) == 32
    assert w.kinds_to(karin) == ["companion_confirmed"]
    assert seats_taken(db, w.event) == 2


def test_companion_without_address_gets_placeholder_and_no_mail(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=5)
    p = w.invitee()
    w.tell(p, ACCEPT, session="werk", companions=(PersonMention("Karin Smit"),))
    [karin] = w.companions(p)
    assert karin.status is P.REGISTERED
    assert karin.person.email.endswith("@" + PLACEHOLDER_DOMAIN)
    assert not has_mailbox(karin.person)
    assert karin.session is not None and karin.session.key == "werk"  # the inviter's session
    assert w.mails(to=karin.person.email) == []


def test_party_that_does_not_fit_is_waitlisted_whole(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=2)
    fill(w, 1)
    p = w.invitee()  # alone they would fit in the one free seat
    w.tell(p, ACCEPT, companions=(PersonMention("Karin Smit", "karin@x.example"),))
    [karin] = w.companions(p)
    assert w.statuses(p, karin) == [P.WAITLISTED, P.WAITLISTED]
    assert karin.waitlist_seq == (p.waitlist_seq or 0) + 1
    assert seats_left(db, w.event) == 1


def test_more_companions_than_allowed_goes_to_review(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=5, max_companions=1)
    p = w.invitee()
    before = w.snapshot()
    inbound = w.tell(
        p, ACCEPT, companions=(PersonMention("Karin Smit"), PersonMention("Jan de Boer"))
    )
    assert inbound.status is InboundStatus.REVIEW
    people, outbox, _ = w.snapshot()
    assert (people, outbox) == before[:2]


def test_cancelling_an_invitee_cancels_the_party_and_tells_companions(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=2)
    p = w.invitee()
    w.tell(p, ACCEPT, session="wonen", companions=(PersonMention("Karin", "karin@x.example"),))
    [karin] = w.companions(p)
    w.say(p, "Ik moet mij helaas afmelden, er is iets tussengekomen.")
    assert w.statuses(p, karin) == [P.CANCELLED, P.CANCELLED]
    assert "cancellation_confirmed" in w.kinds_to(p)
    assert "cancellation_confirmed" in w.kinds_to(karin)
    assert seats_taken(db, w.event) == 0


def test_companion_with_own_token_cancels_only_themselves(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=3)
    p = w.invitee()
    w.tell(p, ACCEPT, session="wonen", companions=(PersonMention("Karin", "karin@x.example"),))
    [karin] = w.companions(p)
    w.say(karin, "Helaas kan ik toch niet komen.")
    assert w.statuses(p, karin) == [P.REGISTERED, P.CANCELLED]


# ----------------------------------------------------------------- decline, cancel, offers


def test_decline_before_registering(db: Session, clock: ManualClock) -> None:
    w = world(db, clock)
    p = w.invitee()
    w.say(p, "Helaas kan ik niet aanwezig zijn.")
    assert w.status(p) is P.DECLINED
    assert w.kinds_to(p) == ["declined_ack"]


def test_cancellation_frees_the_seat_and_offers_it_to_the_first_waiting(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="wonen")
    w.say(first, "Ik moet mij helaas afmelden.")
    assert w.statuses(first, a, b) == [P.CANCELLED, P.OFFERED, P.WAITLISTED]
    assert a.offer_expires_at == now() + timedelta(hours=w.event.offer_expiry_hours)
    assert w.kinds_to(a)[-1] == "seat_offered"
    assert seats_taken(db, w.event) == 1


def test_offer_accepted_registers(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a = w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(first, DECLINE, mentions_cancellation=True)
    w.say(a, "Ja, ik kom graag!")
    assert w.status(a) is P.REGISTERED
    assert a.waitlist_seq is None and a.offer_expires_at is None
    assert w.kinds_to(a)[-1] == "registration_confirmed"


def test_offer_declined_goes_to_the_next(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="wonen")
    w.tell(first, DECLINE, mentions_cancellation=True)
    w.say(a, "Nee, helaas kan ik toch niet.")
    assert w.statuses(a, b) == [P.DECLINED, P.OFFERED]


def test_silence_expires_the_offer_and_promotes_the_next(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="wonen")
    w.tell(first, DECLINE, mentions_cancellation=True)
    clock.advance(hours=w.event.offer_expiry_hours - 1)
    assert expire_offers(db, w.event) == []
    clock.advance(hours=2)
    expired = expire_offers(db, w.event)
    db.commit()
    assert [p.id for p in expired] == [a.id]
    assert w.statuses(a, b) == [P.EXPIRED, P.OFFERED]
    assert "offer_expired" in w.kinds_to(a)
    # a late "ja" goes back to the end of the line (the seat is b's now)
    w.say(a, "Ja, ik kom toch graag!")
    assert w.status(a) is P.WAITLISTED
    assert (a.waitlist_seq or 0) > (b.waitlist_seq or 0)


def test_accept_after_expiry_registers_when_a_seat_is_free_and_nobody_waits(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a = w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(first, DECLINE, mentions_cancellation=True)
    clock.advance(hours=w.event.offer_expiry_hours + 1)
    expire_offers(db, w.event)
    db.commit()
    w.tell(a, ACCEPT)
    assert w.status(a) is P.REGISTERED


def test_cancellation_after_promotion_frees_the_seat_again(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="wonen")
    w.tell(first, DECLINE, mentions_cancellation=True)
    w.tell(a, ACCEPT)
    w.say(a, "Ik moet mij helaas toch afmelden.")
    assert w.statuses(a, b) == [P.CANCELLED, P.OFFERED]
    assert seats_taken(db, w.event) == 1


def test_one_cancellation_offers_exactly_one_seat(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=3)
    registered = fill(w, 3)
    waiting = fill(w, 3)
    w.tell(registered[0], DECLINE, mentions_cancellation=True)
    assert w.statuses(*waiting) == [P.OFFERED, P.WAITLISTED, P.WAITLISTED]
    assert len(w.mails("seat_offered")) == 1


def test_one_free_seat_goes_to_the_single_behind_a_waiting_pair(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=2)
    registered = fill(w, 2)
    pair, single = w.invitee(), w.invitee()
    w.tell(pair, ACCEPT, companions=(PersonMention("Karin", "karin@x.example"),))
    w.tell(single, ACCEPT)
    [karin] = w.companions(pair)
    numbers = (pair.waitlist_seq, karin.waitlist_seq)
    w.tell(registered[0], DECLINE, mentions_cancellation=True)
    # one seat free: the pair at the head does not fit, the single behind it does
    assert w.statuses(pair, karin, single) == [P.WAITLISTED, P.WAITLISTED, P.OFFERED]
    [offer] = w.mails("seat_offered")
    assert offer.recipient == single.person.email
    # the pair was passed over, not moved: same numbers, still first in line
    assert (pair.waitlist_seq, karin.waitlist_seq) == numbers
    assert waitlist_position(db, pair) == 1
    assert seats_left(db, w.event) == 0


def test_a_passed_over_pair_gets_the_next_seats_that_fit_it(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=4)
    couple = w.invitee()
    w.tell(couple, ACCEPT, companions=(PersonMention("Joost", "joost@y.example"),))
    registered = fill(w, 2)
    pair, single1, single2 = w.invitee(), w.invitee(), w.invitee()
    w.tell(pair, ACCEPT, companions=(PersonMention("Karin", "karin@x.example"),))
    w.tell(single1, ACCEPT)
    w.tell(single2, ACCEPT)
    [karin] = w.companions(pair)
    w.tell(registered[0], DECLINE, mentions_cancellation=True)  # one seat: single1
    assert w.statuses(pair, karin, single1, single2) == [P.WAITLISTED] * 2 + [
        P.OFFERED,
        P.WAITLISTED,
    ]
    w.tell(couple, DECLINE, mentions_cancellation=True)  # two seats: the pair comes first
    assert w.statuses(pair, karin, single1, single2) == [P.OFFERED] * 3 + [P.WAITLISTED]
    assert [m.recipient for m in w.mails("seat_offered")] == [
        single1.person.email,
        pair.person.email,
    ]
    w.say(pair, "Ja, wij komen graag!")
    assert w.statuses(pair, karin) == [P.REGISTERED, P.REGISTERED]


def test_a_free_seat_goes_past_someone_waiting_for_a_full_session(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=2, sessions=sessions_with_capacity(wonen=1))
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="werk")
    for_wonen, for_werk = w.invitee(), w.invitee()
    w.tell(for_wonen, ACCEPT, session="wonen")
    w.tell(for_werk, ACCEPT, session="werk")
    assert w.statuses(for_wonen, for_werk) == [P.WAITLISTED, P.WAITLISTED]
    w.tell(b, DECLINE, mentions_cancellation=True)  # an event seat, but wonen is still full
    assert w.statuses(for_wonen, for_werk) == [P.WAITLISTED, P.OFFERED]
    w.tell(a, DECLINE, mentions_cancellation=True)  # wonen has room again: its first waiter
    assert w.statuses(for_wonen, for_werk) == [P.OFFERED, P.OFFERED]


def test_a_freed_place_in_a_full_session_goes_to_the_first_waiting_for_it(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=3, sessions=sessions_with_capacity(wonen=1, werk=1))
    in_wonen, in_werk, elsewhere = w.invitee(), w.invitee(), w.invitee()
    w.tell(in_wonen, ACCEPT, session="wonen")
    w.tell(in_werk, ACCEPT, session="werk")
    w.tell(elsewhere, ACCEPT, session="onderwijs")
    waiting = [w.invitee() for _ in range(4)]
    for person, key in zip(waiting, ["werk", "wonen", "wonen", "onderwijs"], strict=True):
        w.tell(person, ACCEPT, session=key)
    w.tell(in_wonen, DECLINE, mentions_cancellation=True)
    # the head waits for werk (still full); the first one waiting for wonen gets the place,
    # the one behind it for wonen waits, and so does onderwijs (no event seat left)
    assert w.statuses(*waiting) == [P.WAITLISTED, P.OFFERED, P.WAITLISTED, P.WAITLISTED]
    w.tell(waiting[1], DECLINE)  # the offer declined: passed on to the next for wonen
    assert w.statuses(*waiting) == [P.WAITLISTED, P.DECLINED, P.OFFERED, P.WAITLISTED]
    w.tell(in_werk, DECLINE, mentions_cancellation=True)  # werk frees: the head, at last
    assert w.statuses(*waiting) == [P.OFFERED, P.DECLINED, P.OFFERED, P.WAITLISTED]


def test_one_freeing_fills_every_seat_that_fits_someone(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=3, max_companions=2)
    couple = w.invitee()
    w.tell(couple, ACCEPT, companions=(PersonMention("Joost", "joost@y.example"),))
    fill(w, 1)
    trio, single, pair = w.invitee(), w.invitee(), w.invitee()
    w.tell(
        trio,
        ACCEPT,
        companions=(PersonMention("Karin", "karin@x.example"), PersonMention("Jan", None)),
    )
    w.tell(single, ACCEPT)
    w.tell(pair, ACCEPT, companions=(PersonMention("Femke", "femke@z.example"),))
    w.tell(couple, DECLINE, mentions_cancellation=True)  # two seats free
    # the trio does not fit; the single takes one seat, the pair no longer fits in the other
    assert w.statuses(trio, single, pair) == [P.WAITLISTED, P.OFFERED, P.WAITLISTED]
    assert seats_left(db, w.event) == 1
    change_capacity(db, w.event, 4, actor="organiser")  # two free: the trio still not, the pair
    db.commit()
    assert w.statuses(trio, single, pair) == [P.WAITLISTED, P.OFFERED, P.OFFERED]
    assert seats_left(db, w.event) == 0


def test_a_newcomer_does_not_take_a_seat_a_waiting_party_fits(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    in_wonen, waiting = w.invitee(), w.invitee()
    w.tell(in_wonen, ACCEPT, session="wonen")
    w.tell(waiting, ACCEPT, session="wonen")  # wonen is full
    # wonen grows without anyone being offered its new place (a reload of the event file
    # changes a deelsessie's capacity as it is): the place is free, and `waiting` fits it
    wonen = session_row(db, w, "wonen")
    wonen.capacity = 2
    db.commit()
    newcomer = w.invitee()
    w.tell(newcomer, ACCEPT, session="wonen")
    # the one waiting is offered the place first; the newcomer waits behind
    assert w.statuses(waiting, newcomer) == [P.OFFERED, P.WAITLISTED]
    assert [m.recipient for m in w.mails("seat_offered")] == [waiting.person.email]


def test_a_newcomer_gets_a_seat_no_waiting_party_fits(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    in_wonen, for_wonen = w.invitee(), w.invitee()
    w.tell(in_wonen, ACCEPT, session="wonen")
    w.tell(for_wonen, ACCEPT, session="wonen")  # waits for the full deelsessie
    for_werk = w.invitee()
    w.tell(for_werk, ACCEPT, session="werk")  # 9 seats free, none of them for wonen
    assert w.statuses(for_wonen, for_werk) == [P.WAITLISTED, P.REGISTERED]
    assert w.kinds_to(for_werk) == ["registration_confirmed"]
    assert w.mails("seat_offered") == []


def test_a_newcomer_gets_the_seat_a_waiting_pair_cannot_use(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=2)
    registered = fill(w, 2)
    pair = w.invitee()
    w.tell(pair, ACCEPT, companions=(PersonMention("Karin", "karin@x.example"),))
    w.tell(registered[0], DECLINE, mentions_cancellation=True)  # 1 seat free: the pair waits
    newcomer, next_one = w.invitee(), w.invitee()
    w.say(newcomer, "Ja, ik kom graag.")
    assert w.statuses(pair, newcomer) == [P.WAITLISTED, P.REGISTERED]
    w.say(next_one, "Ja, ik kom graag.")  # full again: behind the pair
    assert w.status(next_one) is P.WAITLISTED
    assert (next_one.waitlist_seq or 0) > (pair.waitlist_seq or 0)
    assert seats_left(db, w.event) == 0


def test_waitlisted_person_declining_leaves_the_list(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    fill(w, 1)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT)
    w.tell(b, ACCEPT)
    w.say(a, "Ik kan helaas toch niet.")
    assert w.statuses(a, b) == [P.CANCELLED, P.WAITLISTED]
    assert a.waitlist_seq is None


def test_no_offer_after_the_deadline_the_organiser_is_told_once(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a = w.invitee()
    w.tell(a, ACCEPT)
    clock.set(w.event.registration_deadline + timedelta(hours=1))
    inbound = w.say(first, "Ik moet mij helaas afmelden.")
    assert w.statuses(first, a) == [P.CANCELLED, P.WAITLISTED]
    notices = w.mails("organiser_notice")
    assert [n.recipient for n in notices] == [w.event.contact_email]
    assert w.mails("seat_offered") == []
    # processing the same message again changes nothing and mails nobody twice
    from workflows.inbound import process_inbound

    assert process_inbound(db, inbound) is InboundStatus.PROCESSED
    promote(db, w.event, freed=[first], cause=f"cancelled:in{inbound.id}")
    db.commit()
    assert len(w.mails("organiser_notice")) == 1


def test_no_offer_within_the_last_hours_before_the_start(db: Session, clock: ManualClock) -> None:
    from tests.factories import event_config

    starts_at = event_config().starts_at  # deadline at the start: only the window stops offers
    w = world(db, clock, capacity=1, registration_deadline=starts_at)
    [first] = fill(w, 1)
    a = w.invitee()
    w.tell(a, ACCEPT)
    clock.set(w.event.starts_at - timedelta(hours=w.event.no_offers_within_hours - 1))
    w.tell(first, DECLINE, mentions_cancellation=True)
    assert w.status(a) is P.WAITLISTED
    assert len(w.mails("organiser_notice")) == 1


def test_within_the_last_hours_a_newcomer_does_not_take_a_seat_a_waiting_party_fits(
    db: Session, clock: ManualClock
) -> None:
    from tests.factories import event_config

    starts_at = event_config().starts_at  # deadline at the start: only the window stops offers
    w = world(db, clock, capacity=1, registration_deadline=starts_at)
    [first] = fill(w, 1)
    waiting = w.invitee()
    w.tell(waiting, ACCEPT)
    clock.set(w.event.starts_at - timedelta(hours=w.event.no_offers_within_hours - 1))
    w.tell(first, DECLINE, mentions_cancellation=True)  # no offer: the organiser decides
    newcomer = w.invitee()
    w.tell(newcomer, ACCEPT)
    assert w.statuses(waiting, newcomer) == [P.WAITLISTED, P.WAITLISTED]
    assert seats_left(db, w.event) == 1
    assert len(w.mails("organiser_notice")) == 1  # the freed seat only


def test_late_acceptance_is_waitlisted_under_policy_waitlist(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=10, late_policy="waitlist")
    p = w.invitee()
    clock.set(w.event.registration_deadline + timedelta(minutes=5))
    w.say(p, "Ja, ik kom graag.")
    assert w.status(p) is P.WAITLISTED
    assert len(w.mails("organiser_notice")) == 1


def test_late_acceptance_gets_registration_closed_under_policy_closed(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=10, late_policy="closed")
    p = w.invitee()
    clock.set(w.event.registration_deadline + timedelta(minutes=5))
    w.say(p, "Ja, ik kom graag.")
    assert w.status(p) is P.INVITED
    assert w.kinds_to(p) == ["registration_closed"]


# --------------------------------------------------------------------------- substitutes


def test_substitute_takes_over_a_registered_seat(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    [p] = fill(w, 1)
    sub_mention = PersonMention("Jan de Boer", "j.deboer@gemeente1.example")
    w.tell(p, DECLINE, substitute=sub_mention)
    [sub] = [x for x in w.participants() if x.person.email == sub_mention.email]
    assert w.statuses(p, sub) == [P.CANCELLED, P.REGISTERED]
    assert sub.session_id == p.session_id
    assert seats_taken(db, w.event) == 1
    assert w.kinds_to(sub) == ["substitute_confirmed"]
    assert w.kinds_to(p)[-1] == "declined_ack"
    assert db.get(Invitation, sub.invitation_id).batch == "substitute"  # type: ignore[union-attr]


def test_substitute_takes_over_the_waitlist_number(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    fill(w, 1)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT)
    w.tell(b, ACCEPT)
    seq = a.waitlist_seq
    w.tell(a, DECLINE, substitute=PersonMention("Jan de Boer", "jan@gemeente2.example"))
    [sub] = [x for x in w.participants() if x.person.email == "jan@gemeente2.example"]
    assert w.statuses(a, sub, b) == [P.DECLINED, P.WAITLISTED, P.WAITLISTED]
    assert sub.waitlist_seq == seq and a.waitlist_seq is None


def test_substitute_for_an_unanswered_invitation_is_a_fresh_acceptance(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=3)
    p = w.invitee()
    w.say(
        p,
        "Ik kan helaas niet. Mijn collega Jan de Boer komt in mijn plaats, "
        "zijn e-mailadres is j.deboer@gemeente1.example.",
    )
    [sub] = [x for x in w.participants() if x.person.email == "j.deboer@gemeente1.example"]
    assert w.statuses(p, sub) == [P.DECLINED, P.REGISTERED]
    assert w.kinds_to(sub) == ["substitute_confirmed", "choose_session"]


def test_substitute_who_is_invited_themselves_goes_to_review(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=3)
    p, other = w.invitee(), w.invitee()
    inbound = w.tell(p, DECLINE, substitute=PersonMention("X", other.person.email))
    assert inbound.status is InboundStatus.REVIEW
    assert w.statuses(p, other) == [P.INVITED, P.INVITED]


# --------------------------------------------------------------------------- tentative, question


def test_tentative_is_recorded_without_a_seat(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    p = w.invitee()
    w.say(p, "Ik weet nog niet of ik kan, misschien.")
    assert w.status(p) is P.INVITED
    assert p.tentative_at == now()
    assert w.kinds_to(p) == ["tentative_ack"]
    assert seats_taken(db, w.event) == 0


def test_question_is_forwarded_with_the_original_and_acknowledged(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock)
    p = w.invitee()
    inbound = w.say(p, "Hoe laat begint het programma precies?")
    assert w.status(p) is P.INVITED
    [forwarded] = w.mails("question_forwarded")
    assert forwarded.recipient == w.event.contact_email
    assert forwarded.raw is not None and b"original.eml" in forwarded.raw
    assert inbound.message_id.encode() in forwarded.raw  # the original travels along
    assert w.kinds_to(p) == ["question_ack"]


def test_acceptance_with_a_question_does_both(db: Session, clock: ManualClock) -> None:
    w = world(db, clock)
    p = w.invitee()
    w.say(p, "Ja, ik kom. Hoe laat begint het programma precies?")
    assert w.status(p) is P.REGISTERED
    assert len(w.mails("question_forwarded")) == 1
    assert {"registration_confirmed", "question_ack"} <= set(w.kinds_to(p))


# --------------------------------------------------------------------------- unsubscribe


def test_unsubscribe_is_recorded_once_and_acknowledged(db: Session, clock: ManualClock) -> None:
    w = world(db, clock)
    p = w.invitee()
    w.say(p, "Graag afmelden voor verdere mails.")
    w.tell(p, ReplyKind.UNCLEAR, wants_unsubscribe=True)
    rows = db.scalars(select(Unsubscription).where(Unsubscription.person_id == p.person_id)).all()
    assert [r.organiser for r in rows] == [w.event.organiser]
    assert w.kinds_to(p) == ["unsubscribe_ack"]
    assert w.status(p) is P.INVITED


def test_unsubscribe_or_cancel_ambiguity_goes_to_review(db: Session, clock: ManualClock) -> None:
    w = world(db, clock)
    [p] = fill(w, 1)
    inbound = w.tell(p, DECLINE, mentions_cancellation=True, wants_unsubscribe=True)
    assert inbound.status is InboundStatus.REVIEW
    assert w.status(p) is P.REGISTERED
    assert db.scalars(select(Unsubscription)).all() == []


# --------------------------------------------------------------------------- capacity


def test_raising_capacity_offers_to_the_waitlist(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    fill(w, 1)
    waiting = fill(w, 3)
    change = change_capacity(db, w.event, 3, actor="organiser")
    db.commit()
    assert (change.old, change.new, change.offered) == (1, 3, 2)
    assert w.statuses(*waiting) == [P.OFFERED, P.OFFERED, P.WAITLISTED]
    audit = db.scalars(select(AuditEntry).where(AuditEntry.machine == "event")).one()
    assert audit.actor == "organiser"


def test_lowering_capacity_removes_nobody_and_stops_new_registrations(
    db: Session, clock: ManualClock
) -> None:
    w = world(db, clock, capacity=3)
    registered = fill(w, 3)
    change = change_capacity(db, w.event, 1, actor="organiser")
    db.commit()
    assert change.registered_over_capacity == 2 and change.seats_left == 0
    assert w.statuses(*registered) == [P.REGISTERED] * 3
    newcomer = w.invitee()
    w.tell(newcomer, ACCEPT)
    assert w.status(newcomer) is P.WAITLISTED
    w.tell(registered[0], DECLINE, mentions_cancellation=True)
    assert w.status(newcomer) is P.WAITLISTED  # 2 registered > capacity 1: still no seat
    w.tell(registered[1], DECLINE, mentions_cancellation=True)
    w.tell(registered[2], DECLINE, mentions_cancellation=True)
    assert w.status(newcomer) is P.OFFERED


def test_attended_and_no_show_still_count_as_seats(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=2)
    a, b = fill(w, 2)
    transition(db, a, P.ATTENDED, reason="test: at the door")
    transition(db, b, P.NO_SHOW, reason="test: absent")
    db.commit()
    assert seats_left(db, w.event) == 0


def test_capacity_cli(db: Session, clock: ManualClock, database_url: str) -> None:
    import typer

    from jobs.commands import capacity
    from jobs.commands.common import install_root_options

    app = typer.Typer()  # only this command: other command modules are not under test here
    install_root_options(app)
    capacity.register(app)
    w = world(db, clock, capacity=1)
    fill(w, 1)
    [waiting] = fill(w, 1)
    result = CliRunner().invoke(
        app, ["--database-url", database_url, "capacity", w.event.slug, "2"]
    )
    assert result.exit_code == 0, result.output
    assert "1 → 2" in result.output
    assert w.status(waiting) is P.OFFERED
    db.commit()  # end the test's read transaction: on SQLite it holds the write lock
    bad = CliRunner().invoke(app, ["--database-url", database_url, "capacity", "nope", "2"])
    assert bad.exit_code == 2 and "no event 'nope'" in bad.output


# --------------------------------------------------------------------------- idempotency, audit


def test_reprocessing_the_same_message_changes_nothing(db: Session, clock: ManualClock) -> None:
    from tests.mailfactory import deliver, reply

    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a = w.invitee()
    w.tell(a, ACCEPT)
    raw = reply(to_token=w.token(first), from_=first.person.email, text="Ik moet mij afmelden.")
    deliver(db, raw)
    before = w.snapshot()
    again = deliver(db, raw)
    assert again.status is InboundStatus.PROCESSED
    assert w.snapshot() == before


def test_every_change_is_audited_with_its_inbound_message(db: Session, clock: ManualClock) -> None:
    w = world(db, clock, capacity=1)
    [first] = fill(w, 1)
    a = w.invitee()
    w.tell(a, ACCEPT)
    inbound = w.tell(first, DECLINE, mentions_cancellation=True)
    rows = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.inbound_message_id == inbound.id, AuditEntry.machine == "participant")
        .order_by(AuditEntry.id)
    ).all()
    assert [(r.entity_id, r.old_status, r.new_status) for r in rows] == [
        (first.id, "registered", "cancelled"),
        (a.id, "waitlisted", "offered"),
    ]
    assert rows[0].actor == first.person.email
