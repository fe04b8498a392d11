"""Invitation batches: queue the invitation mail for a selection of an event's invitees.

Queueing moves each invitation pending → queued in the same transaction as its outbox row;
the outbox sender moves it on to sent (workflows.sending.AFTER_SENT). The idempotency key
`invitation:<invitation id>` makes a second run a no-op for everyone already queued, so an
organiser can safely run the same batch again after an interruption.

An invitation that bounced for good (undeliverable) is only queued again when it is named
explicitly (`only`), i.e. after the organiser corrected the address; it gets a new key
`invitation:<id>:<n>` because the first one is spent.

An invitee imported by mistake can be taken off the list while their mail is still pending
(`workflows.invitees.remove_invitees`): the outbox row is cancelled and deleted with the
invitation, so no key of a deleted invitation is left to block a later one with the same id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, and_, cast, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from db.models import (
    Event,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    Participant,
    ParticipantStatus,
    Person,
    Unsubscription,
)
from workflows.errors import RsvpError
from workflows.outbox import MailKind, queue_mail
from workflows.transitions import transition


@dataclass(frozen=True)
class InvitationSelection:
    """What a batch run would do, for the dry run and the progress bar."""

    to_queue: int
    already_invited: int  # queued or sent before (or bounced and not named in `only`)
    unsubscribed: int  # left out: they asked the organiser for no more mail


def invitation_key(invitation_id: int) -> str:
    return f"invitation:{invitation_id}"


def check_selection(
    db: Session, event: Event, *, batch: str | None, only: Sequence[str] | None
) -> None:
    """Refuse a batch name or address that matches nothing, naming what does exist."""
    if batch is not None:
        known = sorted(
            set(db.scalars(select(Invitation.batch).where(Invitation.event_id == event.id)))
        )
        if batch not in known:
            shown = ", ".join(repr(b) for b in known) or "none"
            raise RsvpError(
                f"event {event.slug}: no invitations in batch {batch!r} (batches: {shown})"
            )
    if only:
        wanted = _normalised(only)
        invited = set(
            db.scalars(
                select(Person.email)
                .join(Invitation, Invitation.person_id == Person.id)
                .where(Invitation.event_id == event.id, Person.email.in_(wanted))
            )
        )
        unknown = sorted(set(wanted) - invited)
        if unknown:
            raise RsvpError(
                f"event {event.slug}: not invited, so nothing to send: {', '.join(unknown)} "
                "(import them with `rsvpmail invitees import` first)"
            )


def summarise_selection(
    db: Session, event: Event, *, batch: str | None, only: Sequence[str] | None
) -> InvitationSelection:
    check_selection(db, event, batch=batch, only=only)
    in_scope = _scope(event, batch, only)
    total = db.scalar(select(func.count()).select_from(Invitation).join(Person).where(in_scope))
    to_queue = db.scalar(
        select(func.count())
        .select_from(Invitation)
        .join(Person)
        .where(in_scope, _queueable(event, only))
    )
    unsubscribed = db.scalar(
        select(func.count())
        .select_from(Invitation)
        .join(Person)
        .where(in_scope, _unsubscribed(event))
    )
    to_queue, total, unsubscribed = to_queue or 0, total or 0, unsubscribed or 0
    return InvitationSelection(
        to_queue=to_queue,
        already_invited=total - to_queue - unsubscribed,
        unsubscribed=unsubscribed,
    )


def queue_invitations(
    db: Session,
    event: Event,
    *,
    batch: str | None = None,
    only: Sequence[str] | None = None,
    limit: int | None = None,
    actor: str = "system",
) -> list[OutboundMessage]:
    """Queue the invitation mail for the selection (in the caller's transaction).

    Selection: the event's invitations, of `batch` when given and of the addresses in `only`
    when given, that are pending (or undeliverable and named in `only`), whose person has
    not unsubscribed from the organiser. With `limit`, at most that many are queued, so a
    large batch can be committed in chunks: call again until it returns an empty list.
    """
    check_selection(db, event, batch=batch, only=only)
    query = (
        select(Invitation, Person)
        .join(Person, Invitation.person_id == Person.id)
        .where(_scope(event, batch, only), _queueable(event, only))
        .order_by(Invitation.id)
        .limit(limit)
    )
    if db.get_bind().dialect.name == "postgresql":
        # A second run at the same moment waits here and then sees these as queued.
        query = query.with_for_update(of=Invitation)
    queued: list[OutboundMessage] = []
    for invitation, person in db.execute(query).all():
        row = queue_mail(
            db,
            key=_next_key(db, invitation),
            kind=MailKind.INVITATION,
            event=event,
            person=person,
            invitation=invitation,
        )
        if row is None:
            continue  # queued concurrently by another run
        reason = (
            f"invitation queued (batch {invitation.batch!r})"
            if invitation.batch
            else ("invitation queued")
        )
        if invitation.status == InvitationStatus.UNDELIVERABLE:
            reason = f"invitation queued again after bounce ({invitation.bounce_reason or '?'})"
        transition(db, invitation, InvitationStatus.QUEUED, reason=reason, actor=actor)
        queued.append(row)
    return queued


def _normalised(only: Sequence[str]) -> list[str]:
    return sorted({address.strip().lower() for address in only if address.strip()})


def _scope(event: Event, batch: str | None, only: Sequence[str] | None) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [Invitation.event_id == event.id]
    if batch is not None:
        conditions.append(Invitation.batch == batch)
    if only:
        conditions.append(Person.email.in_(_normalised(only)))
    return and_(*conditions)


def _queueable(event: Event, only: Sequence[str] | None) -> ColumnElement[bool]:
    pending_and_new = and_(
        Invitation.status == InvitationStatus.PENDING,
        ~exists().where(OutboundMessage.idempotency_key == _key_expression()),
    )
    statuses: ColumnElement[bool] = pending_and_new
    if only:
        # Named explicitly: the organiser fixed a bounced address and wants it tried again.
        statuses = or_(pending_and_new, Invitation.status == InvitationStatus.UNDELIVERABLE)
    return and_(statuses, ~_unsubscribed(event), ~_answered())


def _answered() -> ColumnElement[bool]:
    """The invitee answered already — by a mail matched by their address, or an organiser's
    `answer`/`review resolve` — though their invitation was never sent (added by hand after
    they wrote to us): inviting them now would ask again what they said."""
    return exists().where(
        Participant.invitation_id == Invitation.id,
        Participant.companion_of_id.is_(None),
        or_(
            Participant.status != ParticipantStatus.INVITED,
            Participant.tentative_at.is_not(None),
        ),
    )


def _unsubscribed(event: Event) -> ColumnElement[bool]:
    return exists().where(
        Unsubscription.person_id == Invitation.person_id,
        Unsubscription.organiser == event.organiser,
    )


def _key_expression() -> ColumnElement[str]:
    return literal("invitation:") + cast(Invitation.id, String)


def _next_key(db: Session, invitation: Invitation) -> str:
    """`invitation:<id>` the first time; `invitation:<id>:<n>` for the n-th re-send."""
    base = invitation_key(invitation.id)
    if invitation.status == InvitationStatus.PENDING:
        return base
    earlier = db.scalar(
        select(func.count())
        .select_from(OutboundMessage)
        .where(
            or_(
                OutboundMessage.idempotency_key == base,
                OutboundMessage.idempotency_key.like(f"{base}:%"),
            )
        )
    )
    return f"{base}:{earlier or 0}" if earlier else base
