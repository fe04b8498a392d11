"""The registration rules: what a reply does to a participant, seats, the waitlist and offers.

Plain functions over a database session and the clock; the caller owns the transaction, so
a state change, its audit rows and the mail it causes commit together. Every rule that can
change who holds a seat runs under the event lock (`workflows.seats.lock_event`).

Choices (documented here because they are policy, not accidents):

* **Parties.** An invitee and the companions they bring are a party: placed together,
  waitlisted together (consecutive waitlist numbers), offered together, cancelled together.
  When the party does not fit but the invitee alone would, the whole party is waitlisted:
  a party is never split silently. Naming more companions than `max_companions` (or any
  when companions are not welcome) goes to review. Adding companions later to a
  registration goes ahead only when they fit right now in room no waiting party fits (as
  for any newcomer); to a waiting or offered party it goes to review (a human decides
  rather than splitting the party).
* **Companions without an address** become a Person with a placeholder address under
  `PLACEHOLDER_DOMAIN` (`.invalid`, RFC 2606: never deliverable). They have an invitation
  and token like anyone else, but no mail is ever queued to them (`has_mailbox()`); jobs
  that mail people (reminders, follow-ups) should skip them the same way.
* **Newcomers never take a seat a waiting party fits.** Before a new acceptance is placed,
  the free seats are offered to the waiting parties that fit them (`promote`); the newcomer
  is then registered only when its party fits in what is still free and no waiting party
  fits there (within `no_offers_within_hours` nobody is offered, so a waiting party that
  fits keeps the seat for the organiser to give). Otherwise it joins the end of the
  waitlist. A seat that no waiting party can use (someone waits for a full deelsessie) is
  not left empty.
* **Offers fill free seats in arrival order.** When seats free up, every waiting party
  that fits in them (event and deelsessie capacity, open offers counted) is offered a
  place, front of the line first. A party that does not fit (a pair when one seat is free,
  someone waiting for a full deelsessie) is passed over and keeps its place, so it is
  first for the next freed seats that fit it. Seats are not held empty for it: a big
  party can be passed over repeatedly, and the organiser can offer by hand (see `promote`).
* **Offers.** An open offer holds its seats. A "ja" is honoured while the participant is
  still `offered`, even just after `offer_expires_at`, because nobody else was offered the
  seat yet; `expire_offers()` is the one moment an offer ends. No offers after the
  registration deadline or within `no_offers_within_hours` of the start: the organiser gets
  one notice per freeing action instead (idempotency key per freed party and cause).
* **Late replies** (after the deadline): acceptances go to the waitlist (policy "waitlist",
  and the organiser is told) or get `registration_closed` (policy "closed", nothing
  changes). Cancellations still free seats.
* **Cancelling** cancels the whole party (companions with an address are told). A
  substitute takes over the invitee's place: the seat, the offer or the waitlist number
  (companions move over to the substitute); the invitee is declined (cancelled when they
  were registered, since registered → declined is not a legal move). A substitute for
  someone who had not answered is a fresh acceptance on the substitute's behalf. A
  substitute who is invited themselves, or a substitution after the deadline under policy
  "closed", goes to review. A substitute without an address may only take over a seat or
  an offer (nobody could reach them with an offer from the waitlist) — otherwise review.
* **Sessions.** Without a chosen session the person is registered and asked once
  (`choose_session`, `session_asked_at`). Choosing later sets it (`session_confirmed`);
  companions without a session of their own, or in the inviter's previous one, follow the
  inviter. Moving seat holders into a full session goes to review. A move can free a
  deelsessie place, or let someone waiting fit: afterwards the free seats are offered as
  when seats free up (no organiser notice when offers are no longer allowed: a move frees
  no seat).
* **Seat accounting** counts registered and offered (plus attended/no_show after the
  event). Lowering capacity below the registered count removes nobody; it only stops new
  registrations and offers until enough seats are free again.
* **Automatic messages** (`notify_sender=False`) may still change state (a calendar
  client's auto-accept), but no acknowledgement is ever mailed back to the sender.

Mail kinds and the `extra` keys the rules pass to the templates:

=======================  ==================================================================
kind                     extra keys
=======================  ==================================================================
registration_confirmed   (none)
companion_confirmed      inviter_name
substitute_confirmed     replaces_name; waitlisted (bool); position (int, when waitlisted)
waitlisted               position (1-based, persons ahead + 1); late (bool)
seat_offered             party_size; expires_at (aware datetime)
offer_expired            party_size
declined_ack             substitute_name (str, "" unless a substitute was named);
                         declined_offer (bool: the seat declined was offered from the waitlist)
cancellation_confirmed   party_size; inviter_name ("" unless mailed to a companion)
tentative_ack            (none; the template shows the deadline from the event)
choose_session           (none; the sessions come from the event)
session_confirmed        session_key; session_title; inviter_name (to a companion moved along)
registration_closed      (none)
question_forwarded       question_text; from_name; from_email  (+ original.eml attached)
question_ack             (none)
unsubscribe_ack          organiser
organiser_notice         notice and its facts (mail_templates.context.NOTICE_FACTS)
reminder                 days_before            (queued by the reminder job, not here)
=======================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from db.models import (
    SEAT_HOLDING,
    Event,
    EventSession,
    InboundMessage,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Person,
    Unsubscription,
)
from workflows import seats
from workflows.clock import now
from workflows.errors import RsvpError
from workflows.event_config import EventConfig
from workflows.events import event_config
from workflows.invitees import add_invitation
from workflows.outbox import MailKind, queue_mail
from workflows.tokens import new_token
from workflows.transitions import transition
from workflows.understanding import PersonMention, ReplyKind, Understanding

P = ParticipantStatus
PLACEHOLDER_DOMAIN = "no-address.rsvpmail.invalid"
ANSWERED_NOT_ATTENDING = (P.DECLINED, P.CANCELLED)
AFTER_EVENT = (P.ATTENDED, P.NO_SHOW)
# Statuses in which a companion already has their place (not to be placed again).
PLACED = (P.REGISTERED, P.WAITLISTED, P.OFFERED, P.ATTENDED, P.NO_SHOW)


# --------------------------------------------------------------------------- context, outcome


@dataclass
class ReplyContext:
    """Everything a rule needs besides the participant: where, when, who, and what caused it."""

    db: Session
    event: Event
    inbound: InboundMessage | None = None
    actor: str = "system"
    notify_sender: bool = True  # False for automatic mail: never answer it
    at: datetime = field(default_factory=now)
    _config: EventConfig | None = field(default=None, repr=False)

    @property
    def inbound_id(self) -> int | None:
        return self.inbound.id if self.inbound is not None else None

    @property
    def stamp(self) -> str:
        """What makes a mail key unique per cause: the inbound message, else the moment."""
        return f"in{self.inbound.id}" if self.inbound is not None else self.at.isoformat()

    @property
    def config(self) -> EventConfig:
        if self._config is None:
            self._config = event_config(self.event)
        return self._config

    @property
    def late(self) -> bool:
        return self.at > self.event.registration_deadline


@dataclass(frozen=True)
class Outcome:
    """What a rule did (`summary`), or why a human has to decide (`review`, nothing changed)."""

    summary: str
    review: str | None = None


def _review(reason: str) -> Outcome:
    return Outcome(summary="", review=reason)


# --------------------------------------------------------------------------- small helpers


def has_mailbox(person: Person) -> bool:
    """False for placeholder people (companions named without an address)."""
    return not person.email.endswith(".invalid")


def placeholder_email() -> str:
    return f"guest-{new_token()[:20]}@{PLACEHOLDER_DOMAIN}"


def _name(person: Person) -> str:
    if person.name:
        return person.name
    return "guest (name unknown)" if not has_mailbox(person) else person.email


def session_by_key(event: Event, key: str | None) -> EventSession | None:
    if not key:
        return None
    return next((s for s in event.sessions if s.key == key), None)


def companions_of(db: Session, head: Participant) -> list[Participant]:
    return list(
        db.scalars(
            select(Participant)
            .where(Participant.companion_of_id == head.id)
            .order_by(Participant.id)
        )
    )


def party_of(db: Session, head: Participant) -> list[Participant]:
    """The participant and the companions who share their status (they move together)."""
    return [head] + [c for c in companions_of(db, head) if c.status == head.status]


def _mail(
    ctx: ReplyContext,
    kind: MailKind,
    participant: Participant,
    *,
    key: str | None = None,
    to_sender: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Queue `kind` to the participant's person, unless they have no mailbox or must not be
    answered (acknowledgements to an automatic message)."""
    person = participant.person
    if not has_mailbox(person) or (to_sender and not ctx.notify_sender):
        return
    queue_mail(
        ctx.db,
        key=key or f"{kind.value}:{participant.id}:{ctx.stamp}",
        kind=kind,
        event=ctx.event,
        person=person,
        participant=participant,
        invitation=participant.invitation,
        extra=extra,
        in_reply_to=ctx.inbound if to_sender else None,
    )


def notify_organiser(
    db: Session,
    event: Event,
    *,
    key: str,
    notice: str,
    facts: Mapping[str, Any],
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> None:
    """Queue organiser notice `notice` with its facts to the event's contact person.

    The template writes it in the event's language (mail_templates/<lang>/_notices.txt.j2;
    the notices and their facts are listed in mail_templates.context.NOTICE_FACTS).
    """
    queue_mail(
        db,
        key=key,
        kind=MailKind.ORGANISER_NOTICE,
        event=event,
        person=None,
        recipient=event.contact_email,
        extra={**facts, "notice": notice},
        in_reply_to=None,
        attachments=attachments,
    )


def _move(ctx: ReplyContext, p: Participant, new: ParticipantStatus, reason: str) -> None:
    """A status change of a participant, with the bookkeeping fields each status implies.

    The status changes first: clearing a field before could let an autoflush write a row
    that breaks a CHECK (e.g. `offered` without `offer_expires_at`).
    """
    transition(ctx.db, p, new, reason=reason, actor=ctx.actor, inbound_message_id=ctx.inbound_id)
    if new is not P.WAITLISTED and new is not P.OFFERED:
        p.waitlist_seq = None
    if new is not P.OFFERED:
        p.offer_expires_at = None


# --------------------------------------------------------------------------- the dispatcher


def apply_reply(ctx: ReplyContext, participant: Participant, u: Understanding) -> Outcome:
    """Apply an understood reply (accept/decline/tentative/question/unclear) of `participant`.

    Takes the event lock first and re-reads the participant, so two workers holding replies
    of the same person or for the last seat decide one after the other on fresh data.
    A review outcome may leave partial changes behind: the caller rolls back its savepoint.
    """
    ctx.event = seats.lock_event(ctx.db, ctx.event, keep=_owned(ctx.inbound))
    participant = _reread(ctx.db, participant)
    if u.wants_unsubscribe and (u.mentions_cancellation or u.kind is ReplyKind.DECLINE):
        return _review(
            "asks to unsubscribe and also mentions cancelling ('afmelden' can mean both)"
        )
    main = _apply_kind(ctx, participant, u)
    if main.review:
        return main
    done = [main.summary]
    if u.wants_unsubscribe:
        done.append(unsubscribe(ctx, participant.person))
    if u.kind is ReplyKind.QUESTION or u.has_question:
        done.append(forward_question(ctx, participant, u))
    return Outcome("; ".join(d for d in done if d))


def _owned(inbound: InboundMessage | None) -> tuple[InboundMessage, ...]:
    """What the event lock need not re-read: the message in hand (only its own processing
    writes its row)."""
    return (inbound,) if inbound is not None else ()


def _reread(db: Session, p: Participant) -> Participant:
    """The participant as the database has it now, with the person and invitation every
    outcome mails about, in one query instead of three reloads after the lock."""
    return db.scalars(
        select(Participant)
        .where(Participant.id == seats.row_id(p))
        .options(joinedload(Participant.person), joinedload(Participant.invitation))
        .execution_options(populate_existing=True)
    ).one()


def _apply_kind(ctx: ReplyContext, p: Participant, u: Understanding) -> Outcome:
    kind = u.kind
    if kind is ReplyKind.ACCEPT:
        if u.mentions_cancellation and u.substitute is None:
            return _review("reads as an acceptance but also mentions cancelling")
        if u.substitute is not None:
            return substitute(ctx, p, u.substitute, session_key=u.session)
        return accept(ctx, p, session_key=u.session, companions=u.companions, dietary=u.dietary)
    if kind is ReplyKind.DECLINE:
        if u.substitute is not None:
            return substitute(ctx, p, u.substitute, session_key=u.session)
        return decline(ctx, p)
    if kind is ReplyKind.TENTATIVE:
        return tentative(ctx, p)
    if kind is ReplyKind.QUESTION:
        return Outcome("")  # forwarded by the caller; a question changes nothing
    if kind is ReplyKind.UNCLEAR:
        if u.session and p.status in (P.REGISTERED, P.WAITLISTED, P.OFFERED):
            return choose_session(ctx, p, u.session)
        if u.wants_unsubscribe:
            return Outcome("")
        return _review("could not tell what the reply means")
    raise ValueError(f"apply_reply does not handle {kind.value} messages")


# --------------------------------------------------------------------------- accept


def accept(
    ctx: ReplyContext,
    p: Participant,
    *,
    session_key: str | None = None,
    companions: Sequence[PersonMention] = (),
    dietary: str | None = None,
) -> Outcome:
    want = _Acceptance(session_by_key(ctx.event, session_key), _dedupe(companions), dietary)
    if p.status in AFTER_EVENT:
        return _review(f"acceptance from someone already marked {p.status.value}")
    if p.status is P.REGISTERED:
        return _accept_while_registered(ctx, p, want)
    if p.status is P.WAITLISTED:
        return _accept_while_waiting(ctx, p, want)
    if p.status is P.OFFERED:
        return _take_offer(ctx, p, want)
    return _new_registration(ctx, p, want)


@dataclass(frozen=True)
class _Acceptance:
    """What a "ja" asks for besides a place: a deelsessie, companions, a dietary wish."""

    session: EventSession | None
    companions: Sequence[PersonMention]
    dietary: str | None


def _adds_companions(ctx: ReplyContext, head: Participant, want: _Acceptance) -> bool:
    """Whether the reply names a companion who has no place yet."""
    return any(_needs_place(ctx, head, m) for m in want.companions)


def _note_dietary(p: Participant, want: _Acceptance) -> None:
    if want.dietary:
        p.dietary = want.dietary


def _new_registration(ctx: ReplyContext, p: Participant, want: _Acceptance) -> Outcome:
    problem = _companion_problem(ctx, p, want.companions, already=0)
    if problem:
        return _review(problem)
    if ctx.late and ctx.event.late_policy == "closed":
        _mail(ctx, MailKind.REGISTRATION_CLOSED, p, to_sender=True)
        return Outcome("late acceptance: registration is closed, nothing changed")
    _note_dietary(p, want)
    if want.session is not None:
        p.session_id = want.session.id
    party = [p, *_companion_participants(ctx, p, want.companions)]
    return place_party(ctx, p, party, reason="accepted")


def place_party(
    ctx: ReplyContext,
    head: Participant,
    party: Sequence[Participant],
    *,
    reason: str,
    head_kind: MailKind = MailKind.REGISTRATION_CONFIRMED,
    head_extra: Mapping[str, Any] | None = None,
    head_is_sender: bool = True,
) -> Outcome:
    """Register the party if it fits in room no waiting party fits; otherwise waitlist all of
    it at the end (see the module docstring: newcomers never take a seat a waiting party fits)."""
    db = ctx.db
    if _newcomer_fits(ctx, [m.session_id for m in party]):
        for member in party:
            _move(ctx, member, P.REGISTERED, reason)
        _confirm_party(ctx, head, party, head_kind, head_extra, head_is_sender)
        return Outcome(f"registered (party of {len(party)})")
    event = ctx.event
    why = "after the deadline" if ctx.late else "no room free, or waiting parties fit it first"
    for member, seq in zip(party, seats.next_waitlist_numbers(db, event, len(party)), strict=True):
        member.waitlist_seq = seq
        _move(ctx, member, P.WAITLISTED, f"{reason}; waitlisted ({why})")
    position = seats.waitlist_position(db, head)
    if head_kind is MailKind.SUBSTITUTE_CONFIRMED:
        extra = {**(head_extra or {}), "waitlisted": True, "position": position}
        _mail(ctx, head_kind, head, to_sender=head_is_sender, extra=extra)
    else:
        _mail(
            ctx,
            MailKind.WAITLISTED,
            head,
            to_sender=head_is_sender,
            extra={"position": position, "late": ctx.late},
        )
    for member in party[1:]:
        _mail(
            ctx,
            MailKind.WAITLISTED,
            member,
            extra={"position": seats.waitlist_position(db, member), "late": ctx.late},
        )
    if ctx.late:
        notify_organiser(
            db,
            event,
            key=f"organiser_notice:late:{head.id}:{ctx.stamp}",
            notice="late_acceptance",
            facts={
                "name": head.person.name,
                "email": head.person.email if has_mailbox(head.person) else "",
                "party_size": len(party),
                "position": position,
                "seats_free": seats.seats_left(db, event),
            },
        )
    return Outcome(f"waitlisted at position {position} (party of {len(party)}, {why})")


def _newcomer_fits(ctx: ReplyContext, wanted: Sequence[int | None]) -> bool:
    """Whether a new party whose members chose `wanted` may be registered right now.

    Not after the deadline. With people waiting, they come first: the free seats are offered
    to the waiting parties that fit (`promote`), and the newcomer gets only room that none
    of the parties still waiting fits. While offers are allowed that is all that is free
    after `promote`; within the no-offers window a waiting party that fits keeps its claim.
    """
    db = ctx.db
    if ctx.late:
        return False
    if not seats.anyone_waiting(db, ctx.event):
        return seats.party_fits(db, ctx.event, wanted)
    _offer_free_room(ctx)
    room = seats.free_room(db, ctx.event)
    if any(room.fits([m.session_id for m in w]) for w in _waiting_parties(db, ctx.event)):
        return False
    return room.fits(wanted)


def _confirm_party(
    ctx: ReplyContext,
    head: Participant,
    party: Sequence[Participant],
    head_kind: MailKind,
    head_extra: Mapping[str, Any] | None,
    head_is_sender: bool,
) -> None:
    extra = dict(head_extra or {})
    if head_kind is MailKind.SUBSTITUTE_CONFIRMED:
        extra.setdefault("waitlisted", False)
    _mail(ctx, head_kind, head, to_sender=head_is_sender, extra=extra)
    for member in party[1:]:
        _mail(
            ctx,
            MailKind.COMPANION_CONFIRMED,
            member,
            extra={"inviter_name": _name(head.person)},
        )
    ask_session_once(ctx, head)


def ask_session_once(ctx: ReplyContext, p: Participant) -> None:
    """Registered without a deelsessie: ask which one, once per participant."""
    if not ctx.event.sessions or p.session_id is not None or p.session_asked_at is not None:
        return
    if not has_mailbox(p.person) or not ctx.notify_sender:
        return
    _mail(ctx, MailKind.CHOOSE_SESSION, p, key=f"choose_session:{p.id}")
    p.session_asked_at = ctx.at


def _accept_while_registered(ctx: ReplyContext, p: Participant, want: _Acceptance) -> Outcome:
    active = [c for c in companions_of(ctx.db, p) if c.status is P.REGISTERED]
    new = [m for m in want.companions if _needs_place(ctx, p, m)]
    session = want.session
    # New companions without a deelsessie of their own go where the invitee goes after this
    # reply, so a change of deelsessie and new companions are checked as one demand.
    head_session_id = session.id if session is not None else p.session_id
    new_sessions = [_mention_session_id(ctx, p, m, head_session_id) for m in new]
    if new:
        problem = _companion_problem(ctx, p, new, already=len(active))
        if problem:
            return _review(problem)
        # Companions joining a registered party are newcomers: they get only room no
        # waiting party fits, and none after the deadline.
        if not _newcomer_fits(ctx, new_sessions):
            return _review(
                f"registered person adds {len(new)} companion(s) but there is no room for "
                "them right now (a party is not split silently)"
            )
    if session is not None and session.id != p.session_id:
        problem = _session_room_problem(ctx, p, session, joining=new_sessions.count(session.id))
        if problem:
            return _review(problem)
    done: list[str] = []
    _note_dietary(p, want)
    moved = session is not None and session.id != p.session_id
    if session is not None and moved:
        done.append(_set_session(ctx, p, session))
    if new:
        added = _companion_participants(ctx, p, new)
        for member in added:
            _move(ctx, member, P.REGISTERED, "companion added by a registered invitee")
            _mail(
                ctx,
                MailKind.COMPANION_CONFIRMED,
                member,
                extra={"inviter_name": _name(p.person)},
            )
        done.append(f"added {len(added)} companion(s)")
    if not done:
        # A second "ja" usually means the first confirmation was not seen: confirm again.
        _mail(ctx, MailKind.REGISTRATION_CONFIRMED, p, to_sender=True)
        return Outcome("already registered; confirmation sent again")
    if moved:
        done.append(_offers_after_move(ctx))
    return Outcome("; ".join(d for d in done if d))


def _accept_while_waiting(ctx: ReplyContext, p: Participant, want: _Acceptance) -> Outcome:
    if _adds_companions(ctx, p, want):
        return _review("someone on the waitlist adds companions (a human decides)")
    _note_dietary(p, want)
    if want.session is not None and want.session.id != p.session_id:
        return _moved(ctx, _set_session(ctx, p, want.session))
    _mail(
        ctx,
        MailKind.WAITLISTED,
        p,
        to_sender=True,
        extra={"position": seats.waitlist_position(ctx.db, p), "late": ctx.late},
    )
    return Outcome("already on the waitlist; position sent again")


def _take_offer(ctx: ReplyContext, p: Participant, want: _Acceptance) -> Outcome:
    inviter = p.companion_of
    if inviter is not None and inviter.status is P.OFFERED:
        # The offer is the party's, made to the one who brought them: a companion's own yes
        # would register them without their inviter (a party is not split silently).
        return _review(
            f"a companion accepts the seat offered to the party of {_name(inviter.person)}, "
            "who has not answered the offer"
        )
    if _adds_companions(ctx, p, want):
        return _review("accepts an offer and adds companions (a human decides)")
    session = want.session
    moved = session is not None and session.id != p.session_id
    if session is not None and moved:
        problem = _session_room_problem(ctx, p, session)
        if problem:
            return _review(problem)
        # Companions in the invitee's deelsessie go along, as in any move; the confirmations
        # below name the new one, to each of them.
        for follower in _followers(ctx, p):
            follower.session_id = session.id
        p.session_id = session.id
    _note_dietary(p, want)
    party = party_of(ctx.db, p)
    for member in party:
        _move(ctx, member, P.REGISTERED, "accepted the offered seat")
    _confirm_party(ctx, p, party, MailKind.REGISTRATION_CONFIRMED, None, True)
    summary = f"offer accepted: registered (party of {len(party)})"
    # The offer held a place in the deelsessie it was made for, which is free now.
    return _moved(ctx, summary) if moved else Outcome(summary)


# --------------------------------------------------------------------------- companions


def _dedupe(mentions: Sequence[PersonMention]) -> list[PersonMention]:
    """Each companion once. An unnamed one ("ik kom niet alleen") still needs a seat."""
    seen: set[str] = set()
    out: list[PersonMention] = []
    for m in mentions:
        key = (m.email or "").lower() or m.name.strip().lower()
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def _existing_companion(
    ctx: ReplyContext, head: Participant, mention: PersonMention
) -> Participant | None:
    email = (mention.email or "").lower()
    name = mention.name.strip().lower()
    for c in companions_of(ctx.db, head):
        if email and c.person.email == email:
            return c
        if not email and c.person.name.strip().lower() == name:
            return c  # also pairs an unnamed companion with the earlier unnamed one
    return None


def _needs_place(ctx: ReplyContext, head: Participant, mention: PersonMention) -> bool:
    """A named companion who has no place yet (new, or cancelled/declined before)."""
    existing = _existing_companion(ctx, head, mention)
    return existing is None or existing.status not in PLACED


def _person_by_email(db: Session, email: str | None) -> Person | None:
    if not email:
        return None
    return db.scalar(select(Person).where(Person.email == email.lower()))


def _participant_of(db: Session, event: Event, person: Person) -> Participant | None:
    return db.scalar(
        select(Participant).where(
            Participant.event_id == event.id, Participant.person_id == person.id
        )
    )


def _companion_problem(
    ctx: ReplyContext, head: Participant, mentions: Sequence[PersonMention], *, already: int
) -> str | None:
    """Why these companions cannot be added without a human, or None."""
    if not mentions:
        return None
    cfg = ctx.config
    if head.companion_of_id is not None:
        return "a companion names companions of their own"
    if not cfg.companions_welcome:
        return "names companions, but companions are not welcome at this event"
    if already + len(mentions) > cfg.max_companions:
        return f"names {already + len(mentions)} companion(s); at most {cfg.max_companions} allowed"
    for m in mentions:
        person = _person_by_email(ctx.db, m.email)
        if person is None:
            continue
        if person.id == head.person_id:
            return f"names their own address {person.email} as a companion"
        other = _participant_of(ctx.db, ctx.event, person)
        if other is not None and other.companion_of_id != head.id:
            return f"companion {person.email} is on this event's list themselves"
    return None


def _mention_session_id(
    ctx: ReplyContext, head: Participant, m: PersonMention, head_session_id: int | None = None
) -> int | None:
    """The companion's own deelsessie when named, else the head's (now, or `head_session_id`)."""
    own = session_by_key(ctx.event, m.session)
    if own is not None:
        return own.id
    return head_session_id if head_session_id is not None else head.session_id


def _companion_participants(
    ctx: ReplyContext, head: Participant, mentions: Sequence[PersonMention]
) -> list[Participant]:
    """The participant rows to place for the named companions: reused when named before
    (unless they already have a place of their own), else created."""
    rows: list[Participant] = []
    for m in mentions:
        existing = _existing_companion(ctx, head, m)
        if existing is not None:
            if existing.status not in PLACED:
                existing.session_id = _mention_session_id(ctx, head, m)
                rows.append(existing)
            continue
        rows.append(_new_guest(ctx, head, m, batch="companion", companion_of=head))
    return rows


def _new_guest(
    ctx: ReplyContext,
    inviter: Participant,
    m: PersonMention,
    *,
    batch: str,
    companion_of: Participant | None,
) -> Participant:
    """A companion or substitute: a Person (found by address or new), their own invitation
    (status sent, so they have a token to reply with) and their participant row (invited)."""
    db = ctx.db
    person = _person_by_email(db, m.email)
    if person is None:
        person = Person(
            email=(m.email or placeholder_email()).lower(),
            name=m.name.strip() or (m.email or ""),
            organisation=inviter.person.organisation,
            language=inviter.person.language,
        )
        db.add(person)
        db.flush()
    reason = f"{batch} named by {inviter.person.email}"
    _invitation, participant = add_invitation(
        db,
        ctx.event,
        person,
        batch=batch,
        reason=reason,
        status=InvitationStatus.SENT,
        inbound_message_id=ctx.inbound_id,
    )
    participant.companion_of_id = companion_of.id if companion_of is not None else None
    participant.session_id = _mention_session_id(ctx, inviter, m)
    db.flush()
    return participant


# --------------------------------------------------------------------------- sessions


def _followers(ctx: ReplyContext, p: Participant) -> list[Participant]:
    """Companions who go where the inviter goes: without a session or in the inviter's one."""
    return [
        c
        for c in companions_of(ctx.db, p)
        if c.status is p.status and c.session_id in (None, p.session_id)
    ]


def _session_room_problem(
    ctx: ReplyContext, p: Participant, session: EventSession, *, joining: int = 0
) -> str | None:
    """Why `p`'s party cannot move to `session` (with `joining` new members), or None."""
    if p.status not in SEAT_HOLDING or session.capacity is None:
        return None
    moving = [m for m in [p, *_followers(ctx, p)] if m.session_id != session.id]
    left = seats.session_seats_left(ctx.db, session)
    if left is not None and left < len(moving) + joining:
        return f"wants deelsessie {session.key!r}, which is full ({left} place(s) left)"
    return None


def _set_session(ctx: ReplyContext, p: Participant, session: EventSession) -> str:
    followers = _followers(ctx, p)
    for follower in followers:
        follower.session_id = session.id
    p.session_id = session.id
    chosen = {"session_key": session.key, "session_title": session.title}
    _mail(ctx, MailKind.SESSION_CONFIRMED, p, to_sender=True, extra=chosen)
    for follower in followers:
        # Moved along with the one who brought them: their earlier confirmation named the old
        # deelsessie, so they hear of the new one (and from whom it came).
        _mail(
            ctx,
            MailKind.SESSION_CONFIRMED,
            follower,
            extra={**chosen, "inviter_name": _name(p.person)},
        )
    moved_along = f" (and {len(followers)} companion(s))" if followers else ""
    return f"deelsessie set to {session.key}{moved_along}"


def choose_session(ctx: ReplyContext, p: Participant, key: str) -> Outcome:
    """A reply that only names a deelsessie, from someone registered, waiting or offered."""
    session = session_by_key(ctx.event, key)
    if session is None:
        return _review(f"names deelsessie {key!r}, which this event does not have")
    if session.id == p.session_id:
        _mail(
            ctx,
            MailKind.SESSION_CONFIRMED,
            p,
            to_sender=True,
            extra={"session_key": session.key, "session_title": session.title},
        )
        return Outcome(f"deelsessie {session.key} already chosen; confirmed again")
    problem = _session_room_problem(ctx, p, session)
    if problem:
        return _review(problem)
    return _moved(ctx, _set_session(ctx, p, session))


def _moved(ctx: ReplyContext, summary: str) -> Outcome:
    """The outcome of a deelsessie move, after offering what the move left free."""
    return Outcome("; ".join(d for d in (summary, _offers_after_move(ctx)) if d))


def _offers_after_move(ctx: ReplyContext) -> str:
    """A move may free a place in the deelsessie left (for a seat holder) or let someone
    waiting fit (for a waiting person, who may now be offered a seat): offer the free room
    to the waiting parties that fit, as when seats free up. Call it last in the rule."""
    offered = _offer_free_room(ctx)
    return f"{len(offered)} new offer(s)" if offered else ""


# --------------------------------------------------------------------------- decline, cancel


def decline(ctx: ReplyContext, p: Participant, *, substitute_name: str = "") -> Outcome:
    status = p.status
    if status in AFTER_EVENT:
        return _review(f"declines, but is already marked {status.value}")
    if status in ANSWERED_NOT_ATTENDING:
        return Outcome(f"already {status.value}; nothing changed")
    ack = {"substitute_name": substitute_name}
    if status in (P.INVITED, P.EXPIRED):
        _move(ctx, p, P.DECLINED, "declined")
        _mail(ctx, MailKind.DECLINED_ACK, p, to_sender=True, extra=ack)
        return Outcome("declined")
    party = party_of(ctx.db, p)
    if status is P.OFFERED:
        for member in party:
            _move(ctx, member, P.DECLINED, "declined the offered seat")
        _mail(ctx, MailKind.DECLINED_ACK, p, to_sender=True, extra={**ack, "declined_offer": True})
        offered = release(ctx, party, cause=f"declined-offer:{ctx.stamp}")
        return Outcome(f"offer declined (party of {len(party)}); {len(offered)} new offer(s)")
    reason = "cancelled" if status is P.REGISTERED else "cancelled; off the waitlist"
    for member in party:
        _move(ctx, member, P.CANCELLED, reason)
    _mail(
        ctx,
        MailKind.CANCELLATION_CONFIRMED,
        p,
        to_sender=True,
        extra={"party_size": len(party), "inviter_name": ""},
    )
    for member in party[1:]:
        _mail(
            ctx,
            MailKind.CANCELLATION_CONFIRMED,
            member,
            extra={"party_size": len(party), "inviter_name": _name(p.person)},
        )
    # Leaving the waitlist frees no seat and blocks nobody (a party that does not fit is
    # passed over), so only a registration's seats are released; the offers then go to the
    # first waiting parties the free seats fit.
    freed = party if status is P.REGISTERED else []
    offered = release(ctx, freed, cause=f"cancelled:{ctx.stamp}")
    return Outcome(f"{reason} (party of {len(party)}); {len(offered)} new offer(s)")


def release(ctx: ReplyContext, freed: Sequence[Participant], *, cause: str) -> list[Participant]:
    return promote(ctx.db, ctx.event, inbound=ctx.inbound, freed=freed, cause=cause, at=ctx.at)


def _offer_free_room(ctx: ReplyContext) -> list[Participant]:
    """Offer what is free now to the waiting parties that fit, after a change that frees no
    seat of the event but may change who fits (a newcomer about to be placed, a deelsessie
    move). Nothing was freed, so no organiser notice when offers are no longer allowed.

    `promote` takes the event lock again, which re-reads every loaded object: call it after
    the changes of the rule are made, not between a room check and the move it allowed.
    """
    return release(ctx, [], cause="")


# --------------------------------------------------------------------------- substitute


def substitute(
    ctx: ReplyContext, p: Participant, mention: PersonMention, *, session_key: str | None = None
) -> Outcome:
    """The invitee sends someone in their place (see the module docstring for the policy)."""
    problem = _substitute_problem(ctx, p, mention, session_key)
    if problem:
        return _review(problem)
    status = p.status
    own_session = session_by_key(ctx.event, mention.session or session_key)
    sub = _new_guest(ctx, p, mention, batch="substitute", companion_of=None)
    sub.session_id = own_session.id if own_session is not None else p.session_id
    replaces = {"replaces_name": _name(p.person)}
    reason = f"substitute for {p.person.email}"
    if status in (P.REGISTERED, P.OFFERED, P.WAITLISTED):
        summary = _take_over_place(ctx, p, sub, reason, replaces)
        if sub.session_id != p.session_id:
            # Another deelsessie than the invitee's: the place they held there is free, or
            # the substitute (waiting) may fit where the invitee did not.
            summary = _moved(ctx, summary).summary
    else:
        if status in (P.INVITED, P.EXPIRED):
            _move(ctx, p, P.DECLINED, f"declined; sends {sub.person.email} instead")
        placed = place_party(
            ctx,
            sub,
            [sub],
            reason=reason,
            head_kind=MailKind.SUBSTITUTE_CONFIRMED,
            head_extra=replaces,
            head_is_sender=False,
        )
        summary = f"substitute {sub.person.email}: {placed.summary}"
    _mail(
        ctx,
        MailKind.DECLINED_ACK,
        p,
        to_sender=True,
        extra={"substitute_name": _name(sub.person)},
    )
    return Outcome(summary)


def _substitute_problem(
    ctx: ReplyContext, p: Participant, mention: PersonMention, session_key: str | None
) -> str | None:
    status = p.status
    if status in AFTER_EVENT:
        return f"names a substitute, but is already marked {status.value}"
    if p.companion_of_id is not None:
        return "a companion names a substitute"
    person = _person_by_email(ctx.db, mention.email)
    if person is not None and person.id == p.person_id:
        return "names their own address as the substitute"
    if person is not None and _participant_of(ctx.db, ctx.event, person) is not None:
        return f"substitute {person.email} is on this event's list themselves"
    takes_seat = status in SEAT_HOLDING
    if not mention.email and not takes_seat:
        return "substitute without an e-mail address could not be reached with an offer"
    fresh = status not in (*SEAT_HOLDING, P.WAITLISTED)
    if fresh and ctx.late and ctx.event.late_policy == "closed":
        return "substitute named after the deadline (registration closed)"
    own_session = session_by_key(ctx.event, mention.session or session_key)
    if takes_seat and own_session is not None and own_session.id != p.session_id:
        left = seats.session_seats_left(ctx.db, own_session)
        if left is not None and left < 1:
            return f"substitute wants deelsessie {own_session.key!r}, which is full"
    return None


def _take_over_place(
    ctx: ReplyContext,
    p: Participant,
    sub: Participant,
    reason: str,
    replaces: Mapping[str, Any],
) -> str:
    """The substitute takes the invitee's seat, offer or waitlist number; companions follow."""
    db, status = ctx.db, p.status
    seq = p.waitlist_seq
    companions = [c for c in companions_of(db, p) if c.status is status]
    gone = P.CANCELLED if status is P.REGISTERED else P.DECLINED
    _move(ctx, p, gone, f"replaced by {sub.person.email}")
    db.flush()  # releases the waitlist number before the substitute takes it over
    for c in companions:
        c.companion_of_id = sub.id
    if status is P.WAITLISTED:
        sub.waitlist_seq = seq
        _move(ctx, sub, P.WAITLISTED, f"{reason}; takes over waitlist number {seq}")
        extra = {**replaces, "waitlisted": True, "position": seats.waitlist_position(db, sub)}
        _mail(ctx, MailKind.SUBSTITUTE_CONFIRMED, sub, extra=extra)
        return f"{sub.person.email} takes over waitlist number {seq} of {p.person.email}"
    _move(ctx, sub, P.REGISTERED, reason)
    for c in companions:
        if c.status is P.OFFERED:  # the substitute's yes takes the whole offered party
            _move(ctx, c, P.REGISTERED, f"accepted the offered seat with {sub.person.email}")
    party = [sub, *companions]
    _confirm_party(ctx, sub, party, MailKind.SUBSTITUTE_CONFIRMED, replaces, False)
    return f"{sub.person.email} takes over the seat of {p.person.email}"


# --------------------------------------------------------------------------- tentative, question


def tentative(ctx: ReplyContext, p: Participant) -> Outcome:
    if p.status in (P.REGISTERED, P.WAITLISTED, P.OFFERED, *AFTER_EVENT):
        return _review(f"tentative reply from someone {p.status.value} (a cancellation?)")
    p.tentative_at = ctx.at
    _mail(ctx, MailKind.TENTATIVE_ACK, p, to_sender=True)
    return Outcome("tentative reply recorded; no seat held")


def forward_question(ctx: ReplyContext, p: Participant, u: Understanding) -> str:
    """Forward the question (original attached) to the contact person and tell the sender."""
    inbound = ctx.inbound
    sender = (u.sender or (inbound.from_address if inbound else "") or p.person.email).lower()
    raw = inbound.raw if inbound is not None and inbound.raw is not None else b""
    queue_mail(
        ctx.db,
        key=f"question_forwarded:{ctx.stamp}:{p.id}",
        kind=MailKind.QUESTION_FORWARDED,
        event=ctx.event,
        person=None,
        recipient=ctx.event.contact_email,
        participant=p,
        invitation=p.invitation,
        extra={
            "question_text": u.reply_text,
            "from_name": _name(p.person),
            "from_email": sender,
        },
        attachments=[("original.eml", "message/rfc822", raw)] if raw else (),
    )
    _mail(ctx, MailKind.QUESTION_ACK, p, to_sender=True)
    return "question forwarded to the contact person"


# --------------------------------------------------------------------------- unsubscribe


def unsubscribe(ctx: ReplyContext, person: Person) -> str:
    """Record that `person` wants no more non-essential mail from this organiser (idempotent)."""
    db = ctx.db
    organiser = ctx.event.organiser
    row = db.scalar(
        select(Unsubscription).where(
            Unsubscription.person_id == person.id, Unsubscription.organiser == organiser
        )
    )
    if row is None:
        row = Unsubscription(
            person_id=person.id,
            organiser=organiser,
            source="reply",
            inbound_message_id=ctx.inbound_id,
        )
        try:
            with db.begin_nested():
                db.add(row)
        except IntegrityError:  # a concurrent worker recorded it first
            row = db.scalar(
                select(Unsubscription).where(
                    Unsubscription.person_id == person.id, Unsubscription.organiser == organiser
                )
            )
            if row is None:
                raise
    if has_mailbox(person) and ctx.notify_sender:
        queue_mail(
            db,
            key=f"unsubscribe_ack:{row.id}",
            kind=MailKind.UNSUBSCRIBE_ACK,
            event=ctx.event,
            person=person,
            extra={"organiser": organiser},
            in_reply_to=ctx.inbound,
        )
    return "unsubscribed from non-essential mail"


# --------------------------------------------------------------------------- offers


def promote(
    db: Session,
    event: Event,
    *,
    inbound: InboundMessage | None = None,
    freed: Sequence[Participant] = (),
    cause: str = "",
    at: datetime | None = None,
) -> list[Participant]:
    """Offer the free seats to every waiting party that fits, in arrival order; returns who
    got an offer.

    The rule: go through the waiting parties from the front of the line (a party stands at
    its earliest waitlist number) and offer to each party that fits in what is free right
    now: seats in the event and places in each deelsessie with a capacity of its own, where
    registered people and open offers hold theirs (`seats.free_room`, as `party_fits`). A
    party that does not fit is passed over: it keeps its number and its place, and because
    every call starts from the front again, it is the first to be offered whenever freed
    seats fit it. One pass is enough: offers only use up room, so a party passed over early
    in the pass cannot fit later in the same pass. Afterwards, while offers are allowed, no
    waiting party fits in what is still free.

    Starvation, deliberately accepted: a party bigger than what frees up at a time (a pair
    at the head while seats free one by one), or one that wants a full deelsessie, can be
    passed over again and again by parties behind it. An empty seat filled now is worth more
    to the organiser than one held open for a party that may never fit (pretix's waiting
    list, too, serves whoever the free quota can serve, in order of arrival). The organiser
    sees the party waiting (`rsvpmail status`) and can let it in by hand: `rsvpmail offer
    EVENT EMAIL` once its seats are free, or a capacity raise, which promotes from the front.

    Offers are made only while `seats.offers_allowed`; otherwise the organiser is told about
    the freed seats instead. `freed` are the participants whose seats were just released and
    `cause` names why (for that notice's idempotency key).
    """
    event = seats.lock_event(db, event, keep=_owned(inbound))
    at = at or now()
    ctx = ReplyContext(db, event, inbound=inbound, actor="system", at=at)
    if not seats.offers_allowed(event, at):
        _report_freed_seats(ctx, freed, cause)
        return []
    room = seats.free_room(db, event)
    until = at + timedelta(hours=event.offer_expiry_hours)
    offered: list[Participant] = []
    for party in _waiting_parties(db, event):
        if room.seats == 0:
            break
        wanted = [m.session_id for m in party]
        if not room.fits(wanted):
            continue  # passed over for now; it keeps its place at the front
        room.take(wanted)
        head = party[0]
        seq = head.waitlist_seq
        for member in party:
            member.offer_expires_at = until
            _move(ctx, member, P.OFFERED, f"seat offered (waitlist number {member.waitlist_seq})")
        offered.extend(party)
        _offer_mail(ctx, head, party, seq, until)
    return offered


def _waiting_parties(db: Session, event: Event) -> list[list[Participant]]:
    """The waiting parties, head first, in arrival order of their first member in line.

    A companion waits with their inviter while the inviter waits too (as `party_of`, whose
    order of members this keeps); a companion whose inviter left the party waits on their
    own.
    """
    line = seats.waiting(db, event)
    by_id = {p.id: p for p in line}
    members: dict[int, list[Participant]] = {}  # head id -> their waiting companions
    for p in line:
        head_id = p.companion_of_id if p.companion_of_id in by_id else p.id
        companions = members.setdefault(head_id, [])
        if head_id != p.id:
            companions.append(p)
    return [
        [by_id[head_id], *sorted(companions, key=lambda c: c.id)]
        for head_id, companions in members.items()
    ]


def _offer_mail(
    ctx: ReplyContext,
    head: Participant,
    party: Sequence[Participant],
    seq: int | None,
    until: datetime,
) -> None:
    if has_mailbox(head.person):
        queue_mail(
            ctx.db,
            key=f"seat_offered:{head.id}:{seq}",
            kind=MailKind.SEAT_OFFERED,
            event=ctx.event,
            person=head.person,
            participant=head,
            invitation=head.invitation,
            extra={"party_size": len(party), "expires_at": until},
        )
        return
    notify_organiser(
        ctx.db,
        ctx.event,
        key=f"organiser_notice:offer-unreachable:{head.id}:{seq}",
        notice="offer_unreachable",
        facts={"name": head.person.name, "party_size": len(party), "expires_at": until},
    )


def _report_freed_seats(ctx: ReplyContext, freed: Sequence[Participant], cause: str) -> None:
    """Tell the organiser about seats freed when offers are no longer allowed."""
    if not freed:
        return
    db, event = ctx.db, ctx.event
    head = freed[0]
    waiting_count = len(seats.waiting(db, event))
    notify_organiser(
        db,
        event,
        key=f"organiser_notice:seat_freed:{head.id}:{cause}",
        notice="seats_freed",
        facts={
            "name": head.person.name,
            "email": head.person.email if has_mailbox(head.person) else "",
            "count": len(freed),
            "status": head.status.value,
            "seats_free": seats.seats_left(db, event),
            "waiting": waiting_count,
            "after_deadline": ctx.at > event.registration_deadline,
        },
    )


def expire_offers(db: Session, event: Event, *, at: datetime | None = None) -> list[Participant]:
    """The offer job: offers past `offer_expires_at` expire, their seats go to the next party."""
    event = seats.lock_event(db, event)
    at = at or now()
    ctx = ReplyContext(db, event, actor="system", at=at)
    due = list(
        db.scalars(
            select(Participant)
            .where(
                Participant.event_id == event.id,
                Participant.status == P.OFFERED,
                Participant.offer_expires_at <= at,
            )
            .order_by(Participant.waitlist_seq)
        )
    )
    expired: list[Participant] = []
    for p in due:
        if p.status is not P.OFFERED:
            continue  # expired above as part of its inviter's party
        head = p.companion_of if p.companion_of and p.companion_of.status is P.OFFERED else p
        party = party_of(db, head)
        seq = head.waitlist_seq
        for member in party:
            _move(ctx, member, P.EXPIRED, "offer expired without an answer")
        if has_mailbox(head.person):
            queue_mail(
                db,
                key=f"offer_expired:{head.id}:{seq}",
                kind=MailKind.OFFER_EXPIRED,
                event=event,
                person=head.person,
                participant=head,
                invitation=head.invitation,
                extra={"party_size": len(party)},
            )
        promote(db, event, freed=party, cause=f"expired:{seq}", at=at)
        expired.extend(party)
    return expired


def expire_all_offers(db: Session) -> int:
    """`expire_offers` for every event with an offer due (what the scheduler job calls)."""
    at = now()
    event_ids = db.scalars(
        select(Participant.event_id)
        .where(Participant.status == P.OFFERED, Participant.offer_expires_at <= at)
        .distinct()
    ).all()
    total = 0
    for event_id in event_ids:
        event = db.get(Event, event_id)
        if event is not None:
            total += len(expire_offers(db, event, at=at))
    return total


# --------------------------------------------------------------------------- capacity


@dataclass(frozen=True)
class CapacityChange:
    old: int
    new: int
    offered: int  # participants who got an offer because of a raise
    seats_left: int
    waiting: int
    registered_over_capacity: int  # > 0 when lowered below the registered count


def change_capacity(db: Session, event: Event, new_capacity: int, *, actor: str) -> CapacityChange:
    """Set the event's capacity. Raising promotes from the waitlist; lowering removes nobody.

    The change is audited as an `event` entry (old and new capacity in the status columns).
    """
    if new_capacity < 0:
        raise RsvpError(f"event {event.slug}: capacity must be 0 or more, not {new_capacity}")
    event = seats.lock_event(db, event)
    old = event.capacity
    event.capacity = new_capacity
    from db.models import AuditEntry  # local: only this rule audits a non-status change

    db.add(
        AuditEntry(
            actor=actor,
            machine="event",
            entity_id=event.id,
            event_id=event.id,
            old_status=f"capacity={old}"[:20],
            new_status=f"capacity={new_capacity}"[:20],
            reason=f"capacity changed from {old} to {new_capacity}",
        )
    )
    db.flush()
    at = now()
    offered = (
        promote(db, event, cause=f"capacity:{old}->{new_capacity}", at=at)
        if (new_capacity > old)
        else []
    )
    taken = seats.seats_taken(db, event)
    return CapacityChange(
        old=old,
        new=new_capacity,
        offered=len(offered),
        seats_left=max(0, new_capacity - taken),
        waiting=len(seats.waiting(db, event)),
        registered_over_capacity=max(0, taken - new_capacity),
    )
