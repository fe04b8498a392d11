"""Property-based: random sequences of replies, capacity changes, expiries and clock jumps.

After every step the invariants of the registration rules must hold:

* seats held (registered + offered) never exceed the capacity, per event and per session
  with a capacity of its own — unless the capacity was lowered below what was already
  held, in which case the number held never grows;
* new waitlist numbers only grow, and nobody is registered directly while a waiting party
  fits: no party still waiting after the step would fit in what is free plus the seats of
  those registered directly in it;
* after every step, while offers are allowed, no waiting party fits in what is free (a
  deelsessie move or a newcomer leaves no seat unoffered that a waiting party fits);
* every time seats are offered (`promote`, checked right after each call): no offer while
  offers are not allowed; while they are, no waiting party that fits is left without an
  offer — no waiting party fits in what is still free afterwards (event seats and
  deelsessie places, open offers counted) — and the seats went in arrival order among the
  parties that fit: a party still waiting did not fit in what was free when its turn came
  (what is free now plus what this call offered to parties behind it);
* one participant row per person per event;
* every participant's audit trail is an unbroken chain ending in its current status, and
  every status entered in a step has the mail it implies in the outbox;
* (with the clock crossing the deadline) no offer is ever made after the deadline or
  within `no_offers_within_hours` of the start.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    AuditEntry,
    Event,
    EventSession,
    OutboundMessage,
    Participant,
    ParticipantStatus,
)
from tests.factories import event_config
from tests.mailfactory import ManualClock, World, installed_clock
from workflows import registration
from workflows.clock import now
from workflows.registration import change_capacity, expire_offers, has_mailbox
from workflows.seats import offers_allowed
from workflows.understanding import PersonMention, ReplyKind

P = ParticipantStatus
INVITEES = 5
_examples = itertools.count(1)

# What each status entered implies in the outbox, for someone with a mailbox.
MAIL_FOR_STATUS: dict[P, frozenset[str]] = {
    P.REGISTERED: frozenset(
        {"registration_confirmed", "companion_confirmed", "substitute_confirmed"}
    ),
    P.WAITLISTED: frozenset({"waitlisted", "substitute_confirmed"}),
    P.OFFERED: frozenset({"seat_offered"}),
    P.CANCELLED: frozenset({"cancellation_confirmed"}),
    P.DECLINED: frozenset({"declined_ack"}),
    P.EXPIRED: frozenset({"offer_expired"}),
}
# Mail about a whole party goes to its head only.
HEAD_ONLY = (P.OFFERED, P.DECLINED, P.EXPIRED)
# What holds a seat (attended/no_show too: they never occur before the event).
HOLDING = (P.REGISTERED, P.OFFERED, P.ATTENDED, P.NO_SHOW)

Action = tuple[Any, ...]
ACCEPT0: Action = ("accept", 0, 0, None)
PAIR1: Action = ("accept", 1, 1, None)  # invitee 1 with one companion
SINGLE2: Action = ("accept", 2, 0, None)
EXPIRY: list[Action] = [("jump", 50), ("jump", 50), ("expire",)]  # past any offer's expiry


def actions() -> st.SearchStrategy[Action]:
    who = st.integers(0, INVITEES - 1)
    accept = st.tuples(
        st.just("accept"), who, st.integers(0, 2), st.sampled_from([None, "wonen", "werk"])
    )
    return st.one_of(
        accept,
        accept,  # twice: acceptances are what fill seats and the waitlist
        st.tuples(st.just("decline"), who),
        st.tuples(st.just("cancel"), who),
        st.tuples(st.just("capacity"), st.integers(0, 6)),
        st.tuples(st.just("expire")),
        st.tuples(st.just("jump"), st.integers(1, 50)),
    )


@dataclass
class State:
    """What the checker remembers between steps."""

    max_seq: int = 0
    audit_id: int = 0
    outbound_id: int = 0


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with installed_clock(datetime(2022, 11, 1, 9, 0, tzinfo=UTC)) as c:
        yield c


def test_invariants_hold_with_the_deadline_far_away(
    db: Session, backend: str, clock: ManualClock
) -> None:
    run_property(db, clock, backend, start=datetime(2022, 11, 1, 9, 0, tzinfo=UTC), examples=60)


def test_invariants_hold_across_the_deadline(db: Session, backend: str, clock: ManualClock) -> None:
    # Starts five days before the deadline; jumps of up to 50 hours cross it and the
    # no-offers window before the start.
    run_property(db, clock, backend, start=datetime(2023, 1, 21, 9, 0, tzinfo=UTC), examples=25)


def run_property(
    db: Session, clock: ManualClock, backend: str, *, start: datetime, examples: int
) -> None:
    @settings(
        max_examples=examples if backend == "sqlite" else max(5, examples // 6),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    # The cases the offer rule is about, always tried (random steps find them only now
    # and then): a pair at the head when one seat frees, two seats freed at once for two,
    # the head waiting for a full deelsessie, a capacity raise past a trio, an expired
    # offer passed on past a pair.
    @example(capacity=1, wonen_capacity=None, steps=[ACCEPT0, PAIR1, SINGLE2, ("cancel", 0)])
    @example(
        capacity=1,
        wonen_capacity=None,
        steps=[ACCEPT0, ("accept", 1, 0, None), SINGLE2, ("capacity", 3)],
    )
    @example(
        capacity=2,
        wonen_capacity=1,
        steps=[
            ("accept", 0, 0, "wonen"),
            ("accept", 1, 0, "werk"),
            ("accept", 2, 0, "wonen"),
            ("accept", 3, 0, "werk"),
            ("cancel", 1),
            ("cancel", 0),
        ],
    )
    @example(
        capacity=1,
        wonen_capacity=None,
        steps=[
            ACCEPT0,
            ("accept", 1, 2, None),
            SINGLE2,
            ("accept", 3, 1, None),
            ("capacity", 3),
            ("capacity", 4),
            ("decline", 2),
        ],
    )
    @example(
        capacity=1,
        wonen_capacity=None,
        steps=[ACCEPT0, PAIR1, SINGLE2, ("accept", 3, 0, None), ("cancel", 0), *EXPIRY],
    )
    # A newcomer for werk while someone waits for a full wonen; a move out of full wonen;
    # a waiting person moving to a deelsessie with room.
    @example(
        capacity=4,
        wonen_capacity=1,
        steps=[
            ("accept", 0, 0, "wonen"),
            ("accept", 1, 0, "wonen"),
            ("accept", 2, 0, "werk"),
            ("accept", 3, 0, "wonen"),
            ("accept", 0, 0, "werk"),
            ("accept", 3, 0, "werk"),
        ],
    )
    @given(
        capacity=st.integers(1, 4),
        wonen_capacity=st.sampled_from([None, 1, 2]),
        steps=st.lists(actions(), min_size=4, max_size=16),
    )
    def check(capacity: int, wonen_capacity: int | None, steps: list[Action]) -> None:
        clock.set(start)
        problems.clear()  # a failing example leaves its problems behind while shrinking
        sessions = tuple(
            dataclasses.replace(s, capacity=wonen_capacity if s.key == "wonen" else None)
            for s in event_config().sessions
        )
        n = next(_examples)
        w = World(
            db,
            clock,
            slug=f"prop-{backend[:2]}-{n}",
            capacity=capacity,
            sessions=sessions,
            max_companions=2,
            # the outbox's loop brake would rightly stop answers to a chatty sender; here
            # every step must show the mail it implies
            max_answers_per_sender_per_day=1000,
        )
        people = [w.invitee(domain=f"ex{n}-{i}.example") for i in range(INVITEES)]
        state = State(audit_id=_max_id(db, AuditEntry), outbound_id=_max_id(db, OutboundMessage))
        for number, action in enumerate(steps):
            before = _observe(w)
            apply(w, people, action, number)
            db.commit()
            assert not problems, f"after {action}: {problems}"
            check_step(w, before, state, action)

    with promotions_checked() as problems:
        check()


@contextmanager
def promotions_checked() -> Iterator[list[str]]:
    """Check every call of `registration.promote` right after it returns; yields the list
    of problems found. (An assertion inside would not do: a failure while processing a
    reply quarantines the message instead of failing the test.)"""
    real = registration.promote
    problems: list[str] = []

    def checked(db: Session, event: Event, **kwargs: Any) -> list[Participant]:
        offered = real(db, event, **kwargs)
        problems.extend(promotion_problems(db, event, offered, kwargs.get("at") or now()))
        return offered

    with patch.object(registration, "promote", checked):
        yield problems


def apply(w: World, people: list[Participant], action: Action, number: int) -> None:
    name = action[0]
    if name == "accept":
        _, i, companions, session = action
        mentions = tuple(
            PersonMention(
                f"Gast {number}-{j} van {i}",
                f"gast{number}-{j}.{i}@{people[i].person.email.split('@')[1]}" if j % 2 else None,
            )
            for j in range(companions)
        )
        w.tell(people[action[1]], ReplyKind.ACCEPT, session=session, companions=mentions)
    elif name == "decline":
        w.tell(people[action[1]], ReplyKind.DECLINE)
    elif name == "cancel":
        w.tell(people[action[1]], ReplyKind.DECLINE, mentions_cancellation=True)
    elif name == "capacity":
        change_capacity(w.db, w.event, action[1], actor="property-test")
    elif name == "expire":
        expire_offers(w.db, w.event)
    elif name == "jump":
        w.clock.advance(hours=action[1])
    else:  # pragma: no cover - the strategy makes no other actions
        raise AssertionError(action)


@dataclass(frozen=True)
class Observation:
    capacity: int
    statuses: dict[int, P]
    held: int
    held_per_session: dict[int, int]
    waiting_seqs: list[int]


def _observe(w: World) -> Observation:
    w.db.refresh(w.event)
    rows = w.participants()
    held = [p for p in rows if p.status in (P.REGISTERED, P.OFFERED)]
    per_session = Counter(p.session_id for p in held if p.session_id is not None)
    waiting = sorted(p.waitlist_seq or 0 for p in rows if p.status is P.WAITLISTED)
    return Observation(
        capacity=w.event.capacity,
        statuses={p.id: p.status for p in rows},
        held=len(held),
        held_per_session=dict(per_session),
        waiting_seqs=waiting,
    )


def check_step(w: World, before: Observation, state: State, action: Action) -> None:
    after = _observe(w)
    where = f"after {action}"
    rows = {p.id: p for p in w.participants()}

    # capacity, per event and per session
    assert after.held <= max(after.capacity, before.held), where
    for session in w.db.scalars(select(EventSession).where(EventSession.event_id == w.event.id)):
        if session.capacity is not None:
            now_held = after.held_per_session.get(session.id, 0)
            assert now_held <= max(session.capacity, before.held_per_session.get(session.id, 0)), (
                f"{where}: session {session.key}"
            )

    # waitlist numbers; no newcomer in a seat a waiting party fits
    changed = {
        pid: (before.statuses.get(pid), p.status)
        for pid, p in rows.items()
        if before.statuses.get(pid) != p.status
    }
    direct = []
    for pid, (old, new) in changed.items():
        p = rows[pid]
        if new is P.WAITLISTED:
            assert (p.waitlist_seq or 0) > state.max_seq, f"{where}: reused waitlist number"
        if new is P.REGISTERED and old not in (P.OFFERED, P.WAITLISTED):
            direct.append(p)
    free = _free(w.db, w.event, list(rows.values()))
    for party in _parties(list(rows.values()), P.WAITLISTED):
        numbers = sorted(m.waitlist_seq or 0 for m in party)
        if direct:
            fitted = free.with_back(direct).fits(party)
            assert not fitted, f"{where}: registered while waiting {numbers} fitted"
        # whatever the step changed (seats freed, a deelsessie move), what is free is offered
        if offers_allowed(w.event, w.clock()):
            assert not free.fits(party), f"{where}: waiting party {numbers} fits, no offer"
    seqs = [p.waitlist_seq for p in rows.values() if p.waitlist_seq is not None]
    state.max_seq = max([state.max_seq, *seqs])

    # one row per person
    duplicates = w.db.execute(
        select(Participant.person_id)
        .where(Participant.event_id == w.event.id)
        .group_by(Participant.person_id)
        .having(func.count(Participant.id) > 1)
    ).all()
    assert duplicates == [], where

    # audit chain and mail, for everything that happened in this step
    new_audits = w.db.scalars(
        select(AuditEntry)
        .where(AuditEntry.id > state.audit_id, AuditEntry.machine == "participant")
        .order_by(AuditEntry.id)
    ).all()
    new_mail = w.db.scalars(
        select(OutboundMessage).where(OutboundMessage.id > state.outbound_id)
    ).all()
    mail_to = Counter((m.person_id, m.kind) for m in new_mail)
    trails: dict[int, list[AuditEntry]] = {}
    for entry in w.db.scalars(
        select(AuditEntry)
        .where(AuditEntry.machine == "participant", AuditEntry.event_id == w.event.id)
        .order_by(AuditEntry.id)
    ):
        trails.setdefault(entry.entity_id, []).append(entry)
    for p in rows.values():
        _check_chain(trails.get(p.id, []), p, where)
    for entry in new_audits:
        p = rows[entry.entity_id]
        new = P(entry.new_status)
        if entry.old_status is None or new not in MAIL_FOR_STATUS or not has_mailbox(p.person):
            continue
        if new in HEAD_ONLY and p.companion_of_id is not None:
            continue
        kinds = MAIL_FOR_STATUS[new]
        assert any(mail_to[(p.person_id, k)] for k in kinds), (
            f"{where}: {p.person.email} became {new.value} without one of {sorted(kinds)}"
        )
        if new is P.OFFERED:
            assert w.clock() <= w.event.registration_deadline, f"{where}: offer after deadline"
            window = w.event.starts_at - timedelta(hours=w.event.no_offers_within_hours)
            assert entry.at < window, f"{where}: offer too close to the start"
    state.audit_id = _max_id(w.db, AuditEntry)
    state.outbound_id = _max_id(w.db, OutboundMessage)


def promotion_problems(
    db: Session, event: Event, offered: Sequence[Participant], at: datetime
) -> list[str]:
    """What breaks the offer rule after a call of `promote`, checked from the rows (not with
    the helpers of the code under test)."""
    if not offers_allowed(event, at):
        return ["offers while offers are not allowed"] if offered else []
    rows = list(db.scalars(select(Participant).where(Participant.event_id == event.id)))
    free = _free(db, event, rows)
    offered_ids = {p.id for p in offered}
    offered_parties = [
        party
        for party in _parties(rows, P.OFFERED)
        if any(member.id in offered_ids for member in party)
    ]
    problems = []
    if sum(len(party) for party in offered_parties) != len(offered):
        problems.append(f"offered {len(offered)} people, not whole parties")
    for party in _parties(rows, P.WAITLISTED):
        numbers = sorted(m.waitlist_seq or 0 for m in party)
        if free.fits(party):
            problems.append(f"waiting party {numbers} fits but got no offer")
        behind = [m for q in offered_parties if min_seq(q) > min_seq(party) for m in q]
        if behind and free.with_back(behind).fits(party):
            problems.append(f"an offer went past waiting party {numbers}, which fitted first")
    return problems


def min_seq(party: Sequence[Participant]) -> int:
    return min(m.waitlist_seq or 0 for m in party)


def _parties(rows: Sequence[Participant], status: P) -> list[list[Participant]]:
    """Parties in `status`: a companion with an inviter in the same status is in theirs."""
    ids = {p.id for p in rows if p.status is status}
    parties: dict[int, list[Participant]] = {}
    for p in rows:
        if p.status is status:
            head = p.companion_of_id if p.companion_of_id in ids else p.id
            parties.setdefault(head, []).append(p)
    return list(parties.values())


@dataclass(frozen=True)
class Free:
    seats: int
    places: dict[int, int]  # per deelsessie with a capacity of its own

    def fits(self, party: Sequence[Participant]) -> bool:
        wanted = Counter(m.session_id for m in party if m.session_id is not None)
        return len(party) <= self.seats and all(
            wanted[sid] <= left for sid, left in self.places.items()
        )

    def with_back(self, members: Sequence[Participant]) -> Free:
        back = Counter(m.session_id for m in members)
        return Free(
            self.seats + len(members),
            {sid: left + back[sid] for sid, left in self.places.items()},
        )


def _free(db: Session, event: Event, rows: Sequence[Participant]) -> Free:
    holding = [p for p in rows if p.status in HOLDING]
    per_session = Counter(p.session_id for p in holding)
    capped = db.scalars(
        select(EventSession).where(
            EventSession.event_id == event.id, EventSession.capacity.is_not(None)
        )
    )
    return Free(
        max(0, event.capacity - len(holding)),
        {s.id: max(0, (s.capacity or 0) - per_session[s.id]) for s in capped},
    )


def _check_chain(trail: list[AuditEntry], p: Participant, where: str) -> None:
    assert trail and trail[0].old_status is None, f"{where}: {p.id} has no creation entry"
    for previous, entry in itertools.pairwise(trail):
        assert entry.old_status == previous.new_status, f"{where}: broken chain for {p.id}"
    assert trail[-1].new_status == p.status.value, f"{where}: unaudited change of {p.id}"


def _max_id(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.max(model.id))) or 0)
