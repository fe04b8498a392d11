"""Seat accounting: who holds a seat, how many are left, waitlist numbers, the event lock.

A seat is held by a participant who is registered or has an open offer. After the event,
`attended` and `no_show` were registered people, so they keep counting: marking attendance
must never make seats appear out of nothing.

Every rule that changes who holds a seat first calls `lock_event()`. On PostgreSQL that is
`SELECT … FOR UPDATE` on the event row, which serialises seat decisions per event across
workers (READ COMMITTED then shows every later count the committed state of the previous
lock holder). SQLite takes the database write lock at BEGIN IMMEDIATE, so there the lock is
already held for the whole transaction and FOR UPDATE is simply left out by the dialect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from db.models import Event, EventSession, Participant, ParticipantStatus

P = ParticipantStatus

# Statuses that count against capacity (see the module docstring for attended/no_show).
COUNTS_FOR_CAPACITY = (P.REGISTERED, P.OFFERED, P.ATTENDED, P.NO_SHOW)


def lock_event(db: Session, event: Event, *, keep: Iterable[object] = ()) -> Event:
    """Take the per-event seat lock, then make every loaded object re-read the database.

    Pending changes are flushed first (nothing is lost). Re-reading matters because
    sessions keep objects across commits (expire_on_commit=False): a participant loaded
    before another worker changed it would otherwise be decided on stale data. Objects are
    expired just before the locking SELECT, which itself loads the event fresh; nothing is
    read in between, so every later read still sees the state after the lock.

    `keep` names objects nobody else can change, which need no re-read: the inbound message
    in hand, whose row only its own processing writes.
    """
    db.flush()
    if keep:
        kept = {id(obj) for obj in keep}
        for obj in list(db.identity_map.values()):
            if id(obj) not in kept:
                db.expire(obj)
    else:
        db.expire_all()
    return db.scalars(
        select(Event)
        .where(Event.id == row_id(event))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def row_id(obj: Event | Participant) -> int:
    """The row's primary key, read from its identity: `obj.id` would first reload an
    expired object (which `lock_event` just made of every loaded one)."""
    identity = instance_state(obj).identity
    return int(identity[0]) if identity else obj.id


def seats_taken(db: Session, event: Event) -> int:
    return int(
        db.scalar(
            select(func.count(Participant.id)).where(
                Participant.event_id == event.id, Participant.status.in_(COUNTS_FOR_CAPACITY)
            )
        )
        or 0
    )


def seats_left(db: Session, event: Event) -> int:
    """Free seats; never negative, also when capacity was lowered below the registered count."""
    return max(0, event.capacity - seats_taken(db, event))


def session_seats_left(db: Session, session: EventSession) -> int | None:
    """Free places in a deelsessie, or None when it has no capacity of its own."""
    if session.capacity is None:
        return None
    taken = int(
        db.scalar(
            select(func.count(Participant.id)).where(
                Participant.session_id == session.id,
                Participant.status.in_(COUNTS_FOR_CAPACITY),
            )
        )
        or 0
    )
    return max(0, session.capacity - taken)


@dataclass
class FreeRoom:
    """What is free right now: seats in the event and places per deelsessie.

    `sessions` has an entry only for a deelsessie with a capacity of its own. `take` books a
    party's places in memory, so one pass over the waitlist can decide party after party
    without counting again; that is only right while the caller holds the event lock.
    """

    seats: int
    sessions: dict[int, int]

    def fits(self, session_ids: Sequence[int | None]) -> bool:
        """Whether a party whose members chose `session_ids` (None: no session) fits."""
        if self.seats < len(session_ids):
            return False
        demand = Counter(sid for sid in session_ids if sid is not None)
        for session_id, wanted in demand.items():
            left = self.sessions.get(session_id)
            if left is not None and left < wanted:
                return False
        return True

    def take(self, session_ids: Sequence[int | None]) -> None:
        """Book the places of a party that fits (an offer or a registration holds them)."""
        if not self.fits(session_ids):
            raise ValueError(f"no room for a party in sessions {list(session_ids)}")
        self.seats -= len(session_ids)
        for session_id in session_ids:
            if session_id in self.sessions:
                self.sessions[session_id] -= 1


def free_room(db: Session, event: Event) -> FreeRoom:
    """The free seats and deelsessie places now, counting open offers (as `seats_left`)."""
    capped = {
        session_id: capacity
        for session_id, capacity in db.execute(
            select(EventSession.id, EventSession.capacity).where(
                EventSession.event_id == event.id, EventSession.capacity.is_not(None)
            )
        )
        if capacity is not None
    }
    taken: dict[int, int] = {}
    if capped:
        for session_id, count in db.execute(
            select(Participant.session_id, func.count(Participant.id))
            .where(
                Participant.session_id.in_(list(capped)),
                Participant.status.in_(COUNTS_FOR_CAPACITY),
            )
            .group_by(Participant.session_id)
        ):
            if session_id is not None:
                taken[session_id] = int(count)
    return FreeRoom(
        seats=seats_left(db, event),
        sessions={sid: max(0, cap - taken.get(sid, 0)) for sid, cap in capped.items()},
    )


def party_fits(db: Session, event: Event, session_ids: Sequence[int | None]) -> bool:
    """Whether a party whose members chose `session_ids` (None: no session) fits right now."""
    return free_room(db, event).fits(session_ids)


def next_waitlist_numbers(db: Session, event: Event, count: int) -> list[int]:
    """`count` consecutive arrival numbers, bumped atomically in the event row.

    One UPDATE … RETURNING, so two workers can never draw the same number even without the
    event lock; consecutive numbers keep a party together in the waitlist order.
    """
    if count <= 0:
        return []
    last = db.execute(
        update(Event)
        .where(Event.id == event.id)
        .values(waitlist_counter=Event.waitlist_counter + count)
        .returning(Event.waitlist_counter)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(event, "waitlist_counter", last)
    return list(range(int(last) - count + 1, int(last) + 1))


def waiting(db: Session, event: Event) -> list[Participant]:
    """Waitlisted participants in arrival order."""
    return list(
        db.scalars(
            select(Participant)
            .where(Participant.event_id == event.id, Participant.status == P.WAITLISTED)
            .order_by(Participant.waitlist_seq)
        )
    )


def anyone_waiting(db: Session, event: Event) -> bool:
    return (
        db.scalar(
            select(Participant.id)
            .where(Participant.event_id == event.id, Participant.status == P.WAITLISTED)
            .limit(1)
        )
        is not None
    )


def waitlist_position(db: Session, participant: Participant) -> int:
    """1-based rank among the people waiting (persons, not parties: companions count too)."""
    if participant.waitlist_seq is None:
        raise ValueError(f"participant {participant.id} has no waitlist number")
    ahead = db.scalar(
        select(func.count(Participant.id)).where(
            Participant.event_id == participant.event_id,
            Participant.status == P.WAITLISTED,
            Participant.waitlist_seq < participant.waitlist_seq,
        )
    )
    return int(ahead or 0) + 1


def offers_allowed(event: Event, at: datetime) -> bool:
    """No offers after the registration deadline or within `no_offers_within_hours` of the start.

    An offer that late would leave the person too little time to arrange to come; the
    organiser is told about the freed seat instead and decides by hand.
    """
    if at > event.registration_deadline:
        return False
    return at < event.starts_at - timedelta(hours=event.no_offers_within_hours)
