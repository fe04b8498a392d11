"""Corrections by hand: what the organiser records or decides outside the mailbox.

Plain functions over a DB session, like the rules they call; the caller owns the transaction.

* `record_answer` — an answer an invitee gave by phone or in person. It is applied by the
  same rules as an emailed reply (`registration.apply_reply`, as `review resolve` does): the
  same capacity and waitlist checks, promotion of the waitlist when a seat is freed, the
  same mail to the invitee through the outbox, every status change audited, with the
  organiser as actor. It is also how a registered person moves to another deelsessie
  (accept with a session, like a second emailed "ja, deelsessie X") and how someone
  registered, waiting or offered cancels. One deliberate difference: an acceptance of
  someone on the waitlist registers them by hand when their party fits in the free seats
  now — the organiser's decision, even after the deadline and ahead of others waiting
  (an emailed "ja" from the waitlist only repeats their position). When the party does not
  fit, the rules apply as for an email, and the result says they were not registered.
* `offer_by_hand` — offer a waiting party the seats they need now, with the usual expiry
  (never beyond the start), also when automatic offers have stopped (after the deadline or
  close to the event) and ahead of others waiting: the organiser chooses.
* `dismiss_quarantined` — close a quarantined message the organiser handled by hand.

What the rules refuse (they would send an email to review) is an RsvpError here, and
nothing changes. Each recorded answer also leaves one audit row of its own (machine
"answer"), with the organiser's note, even when it changes no status (a tentative answer, a
confirmation sent again).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    AuditEntry,
    Event,
    EventSession,
    InboundMessage,
    InboundStatus,
    Invitation,
    OutboundMessage,
    Participant,
    ParticipantStatus,
    Person,
)
from workflows import seats
from workflows.clock import now
from workflows.errors import NotFound, RsvpError
from workflows.inbound import participant_for
from workflows.outbox import MailKind, queue_mail
from workflows.registration import (
    Outcome,
    ReplyContext,
    apply_reply,
    ask_session_once,
    has_mailbox,
    party_of,
    promote,
)
from workflows.reports import event_tz
from workflows.transitions import transition
from workflows.understanding import PersonMention, ReplyKind, Understanding

P = ParticipantStatus
MAX_TEXT = 4000
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class Answer(StrEnum):
    """What an invitee said by phone or in person."""

    ACCEPT = "accept"
    DECLINE = "decline"
    TENTATIVE = "tentative"
    CANCEL = "cancel"


# A cancellation is a decline by someone who has (or waits for) a place; the rules treat
# both alike. `cancel` only refuses people who never had a place, where it would be a
# decline in disguise.
_KINDS = {
    Answer.ACCEPT: ReplyKind.ACCEPT,
    Answer.DECLINE: ReplyKind.DECLINE,
    Answer.TENTATIVE: ReplyKind.TENTATIVE,
    Answer.CANCEL: ReplyKind.DECLINE,
}
_HAS_A_PLACE = (P.REGISTERED, P.WAITLISTED, P.OFFERED)
_NO_PLACE = (P.INVITED, P.EXPIRED)  # never had a place, or no longer an offer


@dataclass(frozen=True)
class QueuedMail:
    kind: str
    recipient: str


@dataclass(frozen=True)
class AnswerResult:
    email: str
    name: str
    answer: Answer
    old_status: ParticipantStatus
    new_status: ParticipantStatus
    summary: str  # what the rules did
    session_key: str | None
    waitlist_position: int | None
    # Set when an acceptance did not give them a seat: why, and what the organiser can do.
    not_registered: str | None
    mails: tuple[QueuedMail, ...]


@dataclass(frozen=True)
class OfferResult:
    email: str
    name: str
    party_size: int
    expires_at: datetime
    waiting_ahead: int  # people waiting ahead of the party, passed over by this offer
    mailed: bool  # False: the invitee has no address, the organiser tells them


class _Refused(Exception):
    """Raised inside the savepoint to undo what the rules did before they asked for review."""


# --------------------------------------------------------------------------- look-ups


def local_time(event: Event, moment: datetime) -> str:
    """A moment in the event's timezone, with the zone's name: 2023-01-27 10:00 CET."""
    return f"{moment.astimezone(event_tz(event)):%Y-%m-%d %H:%M %Z}"


def parse_person(text: str, option: str = "--companion") -> PersonMention:
    """'Karin Smit <k.smit@gemeente.nl>' or just 'Karin Smit' (who then gets no mail)."""
    example = '"Karin Smit <k.smit@gemeente.nl>"'
    if "<" in text or "@" in text:
        name, address = (part.strip() for part in parseaddr(text))
        if not _EMAIL_RE.match(address):
            raise RsvpError(f"{option} {text!r}: no valid e-mail address; e.g. {example}")
        if not name:
            raise RsvpError(f"{option} {text!r}: give a name too, e.g. {example}")
        return PersonMention(name=name, email=address.lower())
    if not text.strip():
        raise RsvpError(f"{option}: empty; e.g. {example}")
    return PersonMention(name=text.strip(), email=None)


def find_session(event: Event, key: str | None) -> EventSession | None:
    """The event's deelsessie `key` (case-insensitive); an unknown key lists the known ones."""
    if key is None:
        return None
    wanted = key.strip().lower()
    for session in event.sessions:
        if session.key.lower() == wanted:
            return session
    if not event.sessions:
        raise RsvpError(f"event {event.slug} has no deelsessies; leave out the session")
    known = ", ".join(s.key for s in sorted(event.sessions, key=lambda s: s.position))
    raise RsvpError(f"event {event.slug} has no deelsessie {key!r}; its deelsessies: {known}")


def invited_participant(db: Session, event: Event, email: str) -> Participant:
    """The participant of `email` in `event`; NotFound unless they are on its list."""
    address = email.strip().lower()
    if not _EMAIL_RE.match(address):
        raise RsvpError(f"{email!r} is not an e-mail address")
    person = db.scalar(select(Person).where(Person.email == address))
    if person is not None:
        participant = db.scalar(
            select(Participant).where(
                Participant.event_id == event.id, Participant.person_id == person.id
            )
        )
        if participant is not None:
            return participant
        invitation = db.scalar(
            select(Invitation).where(
                Invitation.event_id == event.id, Invitation.person_id == person.id
            )
        )
        if invitation is not None:
            return participant_for(db, invitation, None)
    raise NotFound(
        f"{address} is not invited to {event.slug} (see `rsvpmail people {event.slug}`); "
        "add them to the invitee list and import it first"
    )


# --------------------------------------------------------------------------- answers


def record_answer(
    db: Session,
    event: Event,
    email: str,
    *,
    answer: Answer,
    actor: str,
    session: str | None = None,
    companions: Sequence[PersonMention] = (),
    note: str = "",
) -> AnswerResult:
    """Apply an answer given outside the mailbox (see the module docstring)."""
    if answer is not Answer.ACCEPT and (session is not None or companions):
        raise RsvpError(f"a deelsessie and companions go with accept only, not with {answer}")
    chosen = find_session(event, session)
    actor = actor[:200]
    event = seats.lock_event(db, event)
    participant = invited_participant(db, event, email)
    old = participant.status
    if answer is Answer.CANCEL and old in _NO_PLACE:
        raise RsvpError(
            f"{participant.person.email} is {old.value}: there is no place to cancel "
            "(record that they will not come with --as decline)"
        )
    ctx = ReplyContext(db, event, actor=actor)
    last_mail = db.scalar(select(func.max(OutboundMessage.id))) or 0
    try:
        with db.begin_nested():
            outcome = None
            if answer is Answer.ACCEPT and old is P.WAITLISTED:
                outcome = _register_from_waitlist(ctx, participant, chosen, companions)
            if outcome is None:
                u = Understanding(
                    kind=_KINDS[answer],
                    session=chosen.key if chosen is not None else None,
                    companions=tuple(companions),
                )
                outcome = apply_reply(ctx, participant, u)
            if outcome.review:
                raise _Refused(outcome.review)
    except _Refused as refused:
        raise RsvpError(_refusal(participant, old, answer, str(refused))) from None
    new = participant.status
    summary = outcome.summary or "nothing to change"
    _audit_answer(ctx, participant, old, answer, chosen, companions, summary, note)
    db.flush()
    position = seats.waitlist_position(db, participant) if new is P.WAITLISTED else None
    return AnswerResult(
        email=participant.person.email,
        name=participant.person.name,
        answer=answer,
        old_status=old,
        new_status=new,
        summary=summary,
        session_key=participant.session.key if participant.session is not None else None,
        waitlist_position=position,
        not_registered=_not_registered(ctx, participant, answer, summary, position),
        mails=_mails_since(db, event, last_mail),
    )


def _register_from_waitlist(
    ctx: ReplyContext,
    p: Participant,
    session: EventSession | None,
    companions: Sequence[PersonMention],
) -> Outcome | None:
    """Register a waiting party by hand when it fits now; None when it does not (the rules
    then apply as to an emailed "ja")."""
    db, event = ctx.db, ctx.event
    inviter = p.companion_of
    if inviter is not None and inviter.status is P.WAITLISTED:
        raise RsvpError(
            f"{p.person.email} waits in the party of {inviter.person.email}; "
            "register the whole party through them (a party is not split)"
        )
    if companions:
        raise RsvpError(
            f"{p.person.email} is on the waitlist: register them first, then add "
            "companions with a second accept"
        )
    party = party_of(db, p)
    target = session.id if session is not None else p.session_id
    # Companions without a deelsessie of their own follow the invitee, as the rules do.
    followers = [c for c in party[1:] if c.session_id in (None, p.session_id)]
    wanted = [target, *(target if c in followers else c.session_id for c in party[1:])]
    if not seats.party_fits(db, event, wanted):
        return None
    ahead = _waiting_ahead(db, event, p)
    for member in followers:
        member.session_id = target
    p.session_id = target
    for member in party:
        number = member.waitlist_seq
        transition(
            db,
            member,
            P.REGISTERED,
            reason=f"registered by hand from the waitlist (number {number})",
            actor=ctx.actor,
        )
        member.waitlist_seq = None  # after the move: the CHECK wants a number while waiting
    _mail(ctx, MailKind.REGISTRATION_CONFIRMED, p)
    for member in party[1:]:
        _mail(ctx, MailKind.COMPANION_CONFIRMED, member, inviter_name=_name(p.person))
    ask_session_once(ctx, p)
    # Taking seats frees none, so this normally offers nothing (the line order does not
    # decide who fits): it keeps promote's promise that no waiting party fits in what is
    # free while offers are allowed, should room have been left unoffered.
    promote(db, event, at=ctx.at)
    passed = f"; passed {ahead} person(s) waiting ahead of them" if ahead else ""
    return Outcome(f"registered by hand from the waitlist (party of {len(party)}){passed}")


def _not_registered(
    ctx: ReplyContext, p: Participant, answer: Answer, summary: str, position: int | None
) -> str | None:
    """Why an acceptance did not give them a seat (None when it did)."""
    if answer is not Answer.ACCEPT or p.status in (P.REGISTERED, P.ATTENDED, P.NO_SHOW):
        return None
    if p.status is not P.WAITLISTED:
        return summary  # e.g. a late acceptance when registration is closed
    db, event = ctx.db, ctx.event
    party = party_of(db, p)
    free = seats.seats_left(db, event)
    if seats.party_fits(db, event, [m.session_id for m in party]):
        return (
            f"on the waitlist at position {position} ({_why_waiting(ctx)}); there is room "
            f"now ({free} seat(s) free): record the acceptance again to register them by hand"
        )
    return f"on the waitlist at position {position}: no room ({_room(db, event, p, party)})"


def _room(db: Session, event: Event, p: Participant, party: Sequence[Participant]) -> str:
    """What is free, for a party that does not fit: seats, and places in its deelsessie."""
    room = f"{seats.seats_left(db, event)} seat(s) free for a party of {len(party)}"
    session = p.session
    left = seats.session_seats_left(db, session) if session is not None else None
    if session is not None and left is not None:
        room += f", {left} place(s) left in deelsessie {session.key}"
    return room


def _why_waiting(ctx: ReplyContext) -> str:
    if ctx.late:
        return "accepted after the registration deadline"
    # Registered directly is only a newcomer for room no waiting party fits; this close to
    # the start no offers go out, so a waiting party that fits keeps its claim.
    return "a waiting party fits the free seats first (no offers this close to the start)"


def _waiting_ahead(db: Session, event: Event, p: Participant) -> int:
    if p.waitlist_seq is None:
        return 0
    return int(
        db.scalar(
            select(func.count(Participant.id)).where(
                Participant.event_id == event.id,
                Participant.status == P.WAITLISTED,
                Participant.waitlist_seq < p.waitlist_seq,
            )
        )
        or 0
    )


def _refusal(p: Participant, old: ParticipantStatus, answer: Answer, why: str) -> str:
    hint = ""
    if answer is Answer.TENTATIVE and old in _HAS_A_PLACE:
        hint = "; to free their place record --as cancel"
    return (
        f"cannot record {answer} for {p.person.email} ({old.value}): {why}{hint}; nothing changed"
    )


def _audit_answer(
    ctx: ReplyContext,
    p: Participant,
    old: ParticipantStatus,
    answer: Answer,
    session: EventSession | None,
    companions: Sequence[PersonMention],
    summary: str,
    note: str,
) -> None:
    """One row for the answer itself, next to the status changes it caused.

    Not a status machine (like the `event` and `person` rows): the machine is "answer", the
    entity the participant, the status columns before and after — equal when the answer
    changed no status, which is exactly when this row is the only trace of it.
    """
    said = str(answer)
    if session is not None:
        said += f", deelsessie {session.key}"
    if companions:
        said += ", with " + ", ".join(m.email or m.name for m in companions)
    reason = f"answer recorded by hand: {said}; {summary}" + (f"; note: {note}" if note else "")
    ctx.db.add(
        AuditEntry(
            actor=ctx.actor,
            machine="answer",
            entity_id=p.id,
            event_id=ctx.event.id,
            person_id=p.person_id,
            old_status=str(old),
            new_status=str(p.status),
            reason=reason[:MAX_TEXT],
        )
    )


def _mails_since(db: Session, event: Event, last_id: int) -> tuple[QueuedMail, ...]:
    """Mail of this event queued after `last_id`: what this answer caused. (A mail another
    worker queued for the event at the same moment would show up too; it is only shown.)"""
    rows = db.execute(
        select(OutboundMessage.kind, OutboundMessage.recipient)
        .where(OutboundMessage.event_id == event.id, OutboundMessage.id > last_id)
        .order_by(OutboundMessage.id)
    )
    return tuple(QueuedMail(kind, recipient) for kind, recipient in rows)


def _name(person: Person) -> str:
    return person.name or (person.email if has_mailbox(person) else "guest (name unknown)")


def _mail(ctx: ReplyContext, kind: MailKind, p: Participant, **extra: object) -> None:
    if not has_mailbox(p.person):
        return
    queue_mail(
        ctx.db,
        key=f"{kind.value}:{p.id}:{ctx.stamp}",
        kind=kind,
        event=ctx.event,
        person=p.person,
        participant=p,
        invitation=p.invitation,
        extra=extra,
    )


# --------------------------------------------------------------------------- offers


def offer_by_hand(
    db: Session, event: Event, email: str, *, actor: str, note: str = ""
) -> OfferResult:
    """Offer the waiting party of `email` the seats it needs now (see the module docstring)."""
    actor = actor[:200]
    event = seats.lock_event(db, event)
    p = invited_participant(db, event, email)
    address = p.person.email
    if p.status is not P.WAITLISTED:
        raise RsvpError(_not_offerable(event, p))
    inviter = p.companion_of
    if inviter is not None and inviter.status is P.WAITLISTED:
        raise RsvpError(
            f"{address} waits in the party of {inviter.person.email}; "
            "make the offer to them (a party is offered together)"
        )
    at = now()
    if at >= event.starts_at:
        raise RsvpError(f"event {event.slug} has started; no offers any more")
    party = party_of(db, p)
    if not seats.party_fits(db, event, [m.session_id for m in party]):
        raise RsvpError(
            f"no room to offer {address} a seat: {_room(db, event, p, party)} (open offers "
            "hold their seats)"
        )
    until = min(at + timedelta(hours=event.offer_expiry_hours), event.starts_at)
    ahead = _waiting_ahead(db, event, p)
    number = p.waitlist_seq
    reason = f"seat offered by hand (waitlist number {number})" + (
        f"; note: {note}" if note else ""
    )
    for member in party:
        member.offer_expires_at = until  # before the move: the CHECK wants an expiry
        transition(db, member, P.OFFERED, reason=reason[:MAX_TEXT], actor=actor)
    mailed = has_mailbox(p.person)
    if mailed:
        queue_mail(
            db,
            key=f"seat_offered:{p.id}:{number}:by-hand",
            kind=MailKind.SEAT_OFFERED,
            event=event,
            person=p.person,
            participant=p,
            invitation=p.invitation,
            extra={"party_size": len(party), "expires_at": until},
        )
    db.flush()
    return OfferResult(
        email=address,
        name=p.person.name,
        party_size=len(party),
        expires_at=until,
        waiting_ahead=ahead,
        mailed=mailed,
    )


def _not_offerable(event: Event, p: Participant) -> str:
    address, status = p.person.email, p.status
    if status is P.OFFERED and p.offer_expires_at is not None:
        return (
            f"{address} already has an open offer (until {local_time(event, p.offer_expires_at)})"
        )
    if status is P.REGISTERED:
        return f"{address} is registered already"
    return (
        f"{address} is {status.value}, not on the waitlist; only a waiting party can be "
        f"offered a seat (to register them: rsvpmail answer {event.slug} {address} --as accept)"
    )


# --------------------------------------------------------------------------- quarantine


def headers_only(row: InboundMessage) -> bool:
    """Only the headers are stored: the message was too large to keep whole."""
    return row.raw is not None and row.raw_size > len(row.raw)


def release_quarantined(db: Session, inbound_id: int, *, actor: str) -> InboundStatus:
    """Take a quarantined message out of quarantine and process it again; its new status.

    Only a message whose bytes are stored whole can be read again; for the others the
    organiser handles it by hand and dismisses it (`dismiss_quarantined`).
    """
    from workflows.inbound import process_inbound

    row = db.get(InboundMessage, inbound_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no inbound message with id {inbound_id} (see `rsvpmail inbox quarantine`)")
    if row.status is not InboundStatus.QUARANTINED:
        raise RsvpError(
            f"message {row.id} is {row.status.value}; only quarantined messages can be released"
        )
    if row.raw is None or headers_only(row):
        raise RsvpError(
            f"message {row.id} cannot be processed again: "
            + ("its raw bytes have been purged" if row.raw is None else
               f"it was too large ({row.raw_size:,} bytes) and only its headers are stored; "
               "read it in the quarantine folder on the mail server")
            + "; handle it by hand (e.g. `rsvpmail answer EVENT EMAIL --as …`), then close "
            f"it with `rsvpmail inbox dismiss {row.id} --reason …`"
        )  # fmt: skip
    transition(
        db, row, InboundStatus.RECEIVED, reason="released from quarantine", actor=actor[:200],
        inbound_message_id=row.id,
    )  # fmt: skip
    row.error = None
    status = process_inbound(db, row)
    # The server copy sits in the quarantine folder; the reader moves it to the folder of the
    # new status at its next pass (a pending move is one with moved_at unset).
    row.moved_at = None
    return status


def dismiss_quarantined(db: Session, inbound_id: int, *, reason: str, actor: str) -> InboundMessage:
    """Close a quarantined message the organiser handled by hand.

    It becomes `processed` (a new legal move, quarantined → processed; see
    workflows.transitions): processed already means "nothing left for the service to do",
    as for a review item a human decided, and the resolution and the audit row say that
    it was dismissed, by whom and why. The stored message (or its headers) is kept as
    before; the server copy is moved out of the quarantine folder by the reader.
    """
    why = reason.strip()
    if not why:
        raise RsvpError("say what you did with the message (a reason is required)")
    row = db.scalars(
        select(InboundMessage).where(InboundMessage.id == inbound_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"no inbound message {inbound_id} (see `rsvpmail inbox quarantine`)")
    if row.status is InboundStatus.REVIEW:
        raise RsvpError(
            f"message {inbound_id} waits for review, it is not quarantined: decide it with "
            f"`rsvpmail review resolve {inbound_id} --as …`"
        )
    if row.status is not InboundStatus.QUARANTINED:
        raise RsvpError(
            f"message {inbound_id} is {row.status.value}; only quarantined messages are dismissed"
        )
    actor = actor[:200]
    resolution = f"dismissed by {actor}: {why}"[:MAX_TEXT]
    row.resolution = resolution
    row.resolved_at = now()
    transition(
        db, row, InboundStatus.PROCESSED, reason=resolution, actor=actor, inbound_message_id=row.id
    )
    # The reader moves the server copy to the folder of the new status at its next
    # connection (a pending move is one with moved_at unset), as after `inbox release`.
    row.moved_at = None
    return row


__all__ = [
    "Answer",
    "AnswerResult",
    "OfferResult",
    "QueuedMail",
    "dismiss_quarantined",
    "find_session",
    "headers_only",
    "invited_participant",
    "offer_by_hand",
    "parse_person",
    "record_answer",
    "release_quarantined",
]
