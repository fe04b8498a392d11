"""The organiser's view: read-only queries behind `rsvpmail status`, `people`, `export`,
`review` and `audit`, and the status overview the demo prints at the end.

Every function takes a DB session and returns frozen dataclasses, so the view can be tested
without the CLI and reused by scripts (`StatusReport.to_json_dict()` is what `--json` prints).
Nothing here writes. Times are kept in UTC (`*_at`) and also given in the event's own time
zone (`*_local`), because organisers think in the local time of their event.
"""

from __future__ import annotations

import dataclasses
import email.policy
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import Session

from db.models import (
    AuditEntry,
    Event,
    EventSession,
    InboundMessage,
    InboundStatus,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
    Person,
)
from workflows.clock import now
from workflows.errors import NotFound

PS = ParticipantStatus
# An event's participants with their Person rows, in id order.
Roster = list[tuple[Participant, Person]]

# Seats in use. An open offer holds its seat until taken or released; after the event the
# registered have become attended or no_show, and their seats stay counted so the numbers
# do not jump when attendance is marked.
SEAT_COUNTING = (PS.REGISTERED, PS.OFFERED, PS.ATTENDED, PS.NO_SHOW)
# Statuses in which a person is still part of their party (for party sizes and badges).
_GONE = (PS.DECLINED, PS.CANCELLED, PS.EXPIRED)
DEFAULT_TIMEZONE = "Europe/Amsterdam"
# Headers `review show` displays, in this order.
SHOWN_HEADERS = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Delivered-To",
    "Date",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "X-Autoreply",
    "Precedence",
    "Content-Type",
)


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class SessionCount:
    """Seat use of one deelsessie; `key` is "" for seat holders who have not chosen yet."""

    key: str
    title: str
    capacity: int | None
    registered: int
    offered: int
    waitlisted: int
    attended: int
    no_show: int

    @property
    def taken(self) -> int:
        return self.registered + self.offered + self.attended + self.no_show

    @property
    def left(self) -> int | None:
        return None if self.capacity is None else max(0, self.capacity - self.taken)


@dataclass(frozen=True)
class WaitlistEntry:
    """A waiting party: the person who asked, plus the companions waiting with them."""

    position: int
    participant_id: int
    name: str
    email: str
    organisation: str
    party_size: int
    session_key: str | None
    waitlist_seq: int
    since: datetime
    since_local: datetime


@dataclass(frozen=True)
class OfferEntry:
    participant_id: int
    name: str
    email: str
    organisation: str
    party_size: int
    session_key: str | None
    expires_at: datetime
    expires_local: datetime
    overdue: bool  # past its deadline but not yet expired by the job


@dataclass(frozen=True)
class ReviewItem:
    """An inbound message waiting for a human decision (or, in `review show`, any message)."""

    id: int
    status: str
    received_at: datetime
    received_local: datetime
    from_address: str
    subject: str
    kind: str | None
    why: str
    parsed: str  # what the parser thought, in one line
    reply_text: str
    event_slug: str | None
    person_name: str | None  # the invitee the message was matched to, if any


@dataclass(frozen=True)
class ReviewDetail:
    item: ReviewItem
    headers: tuple[tuple[str, str], ...]
    text: str  # the stripped reply, or the plain body when nothing was classified
    text_source: str  # "classification", "body" or "none"
    raw_size: int
    raw_kept: bool
    classification: Mapping[str, Any] | None
    resolution: str | None
    resolved_at: datetime | None
    resolved_local: datetime | None  # in the same zone as item.received_local


@dataclass(frozen=True)
class BounceEntry:
    invitation_id: int
    name: str
    email: str
    organisation: str
    reason: str
    since: datetime | None
    since_local: datetime | None


@dataclass(frozen=True)
class FailedMail:
    id: int
    recipient: str
    kind: str
    attempts: int
    last_error: str
    created_at: datetime
    created_local: datetime


@dataclass(frozen=True)
class Companion:
    """A colleague someone brings, with their own status (they can cancel on their own)."""

    name: str
    status: str

    @property
    def gone(self) -> bool:
        """Declined, cancelled or expired: no longer part of the party."""
        return self.status in {s.value for s in _GONE}


@dataclass(frozen=True)
class PersonRow:
    """One participant as organisers list and export them."""

    participant_id: int
    name: str
    email: str  # "" for companions without a real address (placeholder in `.invalid`)
    organisation: str
    role: str
    language: str
    status: str
    session_key: str | None
    session_title: str | None
    dietary: str
    companion_of_name: str | None
    companion_of_email: str | None
    companions: tuple[Companion, ...]  # the companions this person brings
    tentative: bool  # invited and answered "maybe" (see is_tentative)
    waitlist_seq: int | None


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    at_local: datetime
    actor: str
    machine: str
    entity_id: int
    person_email: str | None
    person_name: str | None
    old_status: str | None
    new_status: str
    reason: str
    inbound_id: int | None
    source_message_id: str | None


@dataclass(frozen=True)
class StatusReport:
    """Everything `rsvpmail status` shows for one event."""

    slug: str
    title: str
    timezone: str
    starts_local: datetime
    registration_deadline_local: datetime
    generated_at: datetime
    capacity: int
    seats_taken: int
    seats_left: int
    counts: Mapping[str, int]  # every ParticipantStatus value, zeros included
    tentative: int  # invited people who answered "maybe" (no seat held)
    invitation_counts: Mapping[str, int]  # every InvitationStatus value
    sessions: tuple[SessionCount, ...]
    waitlist: tuple[WaitlistEntry, ...]
    offers: tuple[OfferEntry, ...]
    review: tuple[ReviewItem, ...]
    bounces: tuple[BounceEntry, ...]
    failed_mails: tuple[FailedMail, ...]
    outbox_pending: int  # pending or being sent right now

    def to_json_dict(self) -> dict[str, Any]:
        data = _jsonable(dataclasses.asdict(self))
        assert isinstance(data, dict)
        # Derived numbers are properties, which asdict leaves out; scripts want them.
        for entry, session in zip(data["sessions"], self.sessions, strict=True):
            entry["taken"] = session.taken
            entry["left"] = session.left
        return data


# --------------------------------------------------------------------------- status


def status_report(db: Session, event: Event) -> StatusReport:
    """The whole picture of one event at this moment."""
    tz = event_tz(event)
    participants = _participants(db, event)
    counts = Counter(p.status.value for p, _ in participants)
    taken = sum(1 for p, _ in participants if p.status in SEAT_COUNTING)
    invitation_counts = Counter(
        db.scalars(select(Invitation.status).where(Invitation.event_id == event.id))
    )
    return StatusReport(
        slug=event.slug,
        title=event.title,
        timezone=event.timezone,
        starts_local=event.starts_at.astimezone(tz),
        registration_deadline_local=event.registration_deadline.astimezone(tz),
        generated_at=now(),
        capacity=event.capacity,
        seats_taken=taken,
        seats_left=max(0, event.capacity - taken),
        counts={s.value: counts.get(s.value, 0) for s in PS},
        tentative=sum(1 for p, _ in participants if is_tentative(p)),
        invitation_counts={s.value: invitation_counts.get(s, 0) for s in InvitationStatus},
        sessions=tuple(session_counts(db, event, participants)),
        waitlist=tuple(waitlist(db, event, participants)),
        offers=tuple(open_offers(db, event, participants)),
        review=tuple(review_items(db, event, include_unmatched=True)),
        bounces=tuple(bounces(db, event)),
        failed_mails=tuple(failed_mails(db, event)),
        outbox_pending=outbox_pending(db, event),
    )


def session_counts(
    db: Session,
    event: Event,
    participants: Roster | None = None,
) -> list[SessionCount]:
    """Per deelsessie (in programme order), plus a row for seat holders without a choice."""
    participants = _roster(db, event, participants)
    by_session: dict[int | None, Counter[PS]] = defaultdict(Counter)
    for participant, _ in participants:
        by_session[participant.session_id][participant.status] += 1
    sessions = db.scalars(
        select(EventSession)
        .where(EventSession.event_id == event.id)
        .order_by(EventSession.position, EventSession.id)
    )
    rows = [_session_count(s.key, s.title, s.capacity, by_session[s.id]) for s in sessions]
    unchosen = _session_count("", "(no session chosen)", None, by_session[None])
    if unchosen.taken or unchosen.waitlisted:
        rows.append(unchosen)
    return rows


def _session_count(key: str, title: str, capacity: int | None, c: Counter[PS]) -> SessionCount:
    return SessionCount(
        key=key,
        title=title,
        capacity=capacity,
        registered=c[PS.REGISTERED],
        offered=c[PS.OFFERED],
        waitlisted=c[PS.WAITLISTED],
        attended=c[PS.ATTENDED],
        no_show=c[PS.NO_SHOW],
    )


def waitlist(
    db: Session,
    event: Event,
    participants: Roster | None = None,
) -> list[WaitlistEntry]:
    """Waiting parties in arrival order (waitlist_seq), numbered from 1.

    A companion waiting together with the person who brought them is counted in that
    person's party, not listed separately; a companion waiting on their own (the host got
    in, they did not) is a party of one.
    """
    participants = _roster(db, event, participants)
    tz = event_tz(event)
    heads = sorted(
        _parties(participants, PS.WAITLISTED), key=lambda party: party[0].waitlist_seq or 0
    )
    since = _entered_status(db, [p.id for p, _, _ in heads], PS.WAITLISTED)
    sessions = _session_keys(db, event)
    entries = []
    for position, (p, person, size) in enumerate(heads, start=1):
        joined = since.get(p.id, p.created_at)
        entries.append(
            WaitlistEntry(
                position=position,
                participant_id=p.id,
                name=person.name,
                email=display_email(person.email),
                organisation=person.organisation,
                party_size=size,
                session_key=sessions.get(p.session_id) if p.session_id else None,
                waitlist_seq=p.waitlist_seq or 0,
                since=joined,
                since_local=joined.astimezone(tz),
            )
        )
    return entries


def open_offers(
    db: Session,
    event: Event,
    participants: Roster | None = None,
) -> list[OfferEntry]:
    """Offers waiting for an answer, the soonest deadline first (parties counted as one)."""
    participants = _roster(db, event, participants)
    tz = event_tz(event)
    sessions = _session_keys(db, event)
    current = now()
    entries = []
    for p, person, size in _parties(participants, PS.OFFERED):
        if p.offer_expires_at is None:
            continue
        entries.append(
            OfferEntry(
                participant_id=p.id,
                name=person.name,
                email=display_email(person.email),
                organisation=person.organisation,
                party_size=size,
                session_key=sessions.get(p.session_id) if p.session_id else None,
                expires_at=p.offer_expires_at,
                expires_local=p.offer_expires_at.astimezone(tz),
                overdue=p.offer_expires_at <= current,
            )
        )
    return sorted(entries, key=lambda e: (e.expires_at, e.participant_id))


def _parties(participants: Roster, status: PS) -> list[tuple[Participant, Person, int]]:
    """(head, person, party size) of everyone in `status`: a companion in the same status as
    the person who brought them is counted in that party; one on their own is a party of 1."""
    members = [(p, person) for p, person in participants if p.status is status]
    member_ids = {p.id for p, _ in members}
    companions = Counter(p.companion_of_id for p, _ in members if p.companion_of_id in member_ids)
    return [
        (p, person, 1 + companions[p.id])
        for p, person in members
        if p.companion_of_id not in member_ids
    ]


def bounces(db: Session, event: Event) -> list[BounceEntry]:
    """Invitations that could not be delivered (permanent bounce): fix the address, resend."""
    tz = event_tz(event)
    rows = db.execute(
        select(Invitation, Person)
        .join(Person, Person.id == Invitation.person_id)
        .where(
            Invitation.event_id == event.id,
            Invitation.status == InvitationStatus.UNDELIVERABLE,
        )
        .order_by(Person.name, Person.email)
    ).all()
    since = _entered_status(
        db, [inv.id for inv, _ in rows], InvitationStatus.UNDELIVERABLE, machine="invitation"
    )
    return [
        BounceEntry(
            invitation_id=inv.id,
            name=person.name,
            email=person.email,
            organisation=person.organisation,
            reason=inv.bounce_reason or "",
            since=since.get(inv.id),
            since_local=since[inv.id].astimezone(tz) if inv.id in since else None,
        )
        for inv, person in rows
    ]


def failed_mails(db: Session, event: Event) -> list[FailedMail]:
    """Outbound mail the server refused for good, oldest first, with the server's answer."""
    tz = event_tz(event)
    rows = db.scalars(
        select(OutboundMessage)
        .where(
            OutboundMessage.event_id == event.id,
            OutboundMessage.status == OutboundStatus.FAILED,
        )
        .order_by(OutboundMessage.created_at, OutboundMessage.id)
    )
    return [
        FailedMail(
            id=m.id,
            recipient=m.recipient,
            kind=m.kind,
            attempts=m.attempts,
            last_error=m.last_error or "",
            created_at=m.created_at,
            created_local=m.created_at.astimezone(tz),
        )
        for m in rows
    ]


def outbox_pending(db: Session, event: Event) -> int:
    """Mail of this event not sent yet: waiting in the outbox or being sent right now."""
    count = db.scalar(
        select(func.count(OutboundMessage.id)).where(
            OutboundMessage.event_id == event.id,
            OutboundMessage.status.in_((OutboundStatus.PENDING, OutboundStatus.SENDING)),
        )
    )
    return int(count or 0)


# --------------------------------------------------------------------------- review


def review_items(
    db: Session, event: Event | None = None, *, include_unmatched: bool = True
) -> list[ReviewItem]:
    """Messages waiting for a decision, oldest first.

    With an event: its own messages, plus (by default) those matched to no event at all,
    since an unmatched reply may well be about this event and would otherwise go unseen.
    """
    query = select(InboundMessage).where(InboundMessage.status == InboundStatus.REVIEW)
    if event is not None:
        belongs = InboundMessage.event_id == event.id
        if include_unmatched:
            belongs = or_(belongs, InboundMessage.event_id.is_(None))
        query = query.where(belongs)
    messages = list(db.scalars(query.order_by(InboundMessage.received_at, InboundMessage.id)))
    # Unmatched messages shown with an event are in that event's time, like the rest.
    return _review_items(db, messages, unmatched_tz=event_tz(event) if event else None)


def review_detail(db: Session, inbound_id: int) -> ReviewDetail:
    """One inbound message in full: headers, the stripped reply, what the parser thought."""
    message = db.get(InboundMessage, inbound_id)
    if message is None:
        raise NotFound(f"no inbound message with id {inbound_id}")
    (item,) = _review_items(db, [message])
    zone = item.received_local.tzinfo
    text, source = item.reply_text, "classification"
    if not text:
        text = _plain_body(message.raw) if message.raw else ""
        source = "body" if text else "none"
    return ReviewDetail(
        item=item,
        headers=_headers(message.raw),
        text=text,
        text_source=source,
        raw_size=message.raw_size,
        raw_kept=message.raw is not None,
        classification=message.classification,
        resolution=message.resolution,
        resolved_at=message.resolved_at,
        resolved_local=message.resolved_at.astimezone(zone) if message.resolved_at else None,
    )


def _review_items(
    db: Session, messages: list[InboundMessage], *, unmatched_tz: ZoneInfo | None = None
) -> list[ReviewItem]:
    """Messages as review items; times in their event's zone (`unmatched_tz`, else the
    default zone, for messages matched to no event)."""
    ids = [m.id for m in messages]
    reasons = _latest_reasons(db, ids, InboundStatus.REVIEW, machine="inbound")
    events = {
        e.id: e
        for e in db.scalars(
            select(Event).where(Event.id.in_({m.event_id for m in messages if m.event_id}))
        )
    }
    invitees = {
        invitation_id: name
        for invitation_id, name in db.execute(
            select(Invitation.id, Person.name)
            .join(Person, Person.id == Invitation.person_id)
            .where(Invitation.id.in_({m.invitation_id for m in messages if m.invitation_id}))
        )
    }
    items = []
    for m in messages:
        event = events.get(m.event_id) if m.event_id else None
        classification = m.classification or {}
        why = reasons.get(m.id) or m.error or "; ".join(classification.get("notes") or ())
        items.append(
            ReviewItem(
                id=m.id,
                status=m.status.value,
                received_at=m.received_at,
                received_local=m.received_at.astimezone(
                    event_tz(event) if event else unmatched_tz or _zone(DEFAULT_TIMEZONE)
                ),
                from_address=m.from_address,
                subject=m.subject,
                kind=m.kind or classification.get("kind"),
                why=why,
                parsed=describe_classification(classification),
                reply_text=str(classification.get("reply_text") or ""),
                event_slug=event.slug if event else None,
                person_name=invitees.get(m.invitation_id) if m.invitation_id else None,
            )
        )
    return items


def describe_classification(classification: Mapping[str, Any]) -> str:
    """What the parser thought, in one line: 'accept · session wonen · +1: Karin Smit'."""
    if not classification:
        return "(not classified)"
    parts = [str(classification.get("kind") or "?")]
    if classification.get("session"):
        parts.append(f"session {classification['session']}")
    companions = [_mention(c) for c in classification.get("companions") or ()]
    if companions:
        parts.append(f"+{len(companions)}: " + ", ".join(companions))
    if classification.get("substitute"):
        parts.append(f"substitute: {_mention(classification['substitute'])}")
    if classification.get("dietary"):
        parts.append(f"dietary: {classification['dietary']}")
    flags = [
        label
        for key, label in (
            ("has_question", "question"),
            ("mentions_cancellation", "mentions cancellation"),
            ("wants_unsubscribe", "unsubscribe"),
            ("is_automatic", "automatic"),
        )
        if classification.get(key)
    ]
    parts.extend(flags)
    if classification.get("language"):
        parts.append(f"lang {classification['language']}")
    return " · ".join(parts)


def _mention(data: Any) -> str:
    if not isinstance(data, Mapping):
        return str(data)
    name, address = data.get("name") or "", data.get("email") or ""
    return f"{name} <{address}>" if address else str(name)


def _headers(raw: bytes | None) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    fallback: Message | None = None
    shown: list[tuple[str, str]] = []
    for name in SHOWN_HEADERS:
        try:
            values = [str(v) for v in parsed.get_all(name) or ()]
        except Exception:  # a malformed header in arbitrary mail: show it undecoded instead
            fallback = fallback or BytesHeaderParser().parsebytes(raw)
            values = [str(v) for v in fallback.get_all(name) or ()]
        shown.extend((name, " ".join(v.split())) for v in values)
    return tuple(shown)


def _plain_body(raw: bytes) -> str:
    """The first text/plain part, for messages that were never classified (quarantined)."""
    try:
        message = message_from_bytes(raw, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",))
        content = part.get_content() if part is not None else ""
    except Exception:  # undecodable mail must still be viewable: say so instead of failing
        return ""
    return str(content).strip()


# --------------------------------------------------------------------------- people


def people(
    db: Session,
    event: Event,
    *,
    statuses: Collection[ParticipantStatus] = (),
    session: str | None = None,
) -> list[PersonRow]:
    """Participants of the event, by name; filtered by status and/or session key."""
    session_id = _session_id(db, event, session) if session else None
    participants = _participants(db, event)
    by_id = {p.id: (p, person) for p, person in participants}
    sessions = {
        s.id: s for s in db.scalars(select(EventSession).where(EventSession.event_id == event.id))
    }
    brought: dict[int, list[Companion]] = defaultdict(list)
    for p, person in participants:
        if p.companion_of_id in by_id:
            brought[p.companion_of_id].append(Companion(person.name, p.status.value))
    rows = []
    for p, person in participants:
        if statuses and p.status not in statuses:
            continue
        if session_id is not None and p.session_id != session_id:
            continue
        host = by_id.get(p.companion_of_id) if p.companion_of_id else None
        chosen = sessions.get(p.session_id) if p.session_id else None
        rows.append(
            PersonRow(
                participant_id=p.id,
                name=person.name,
                email=display_email(person.email),
                organisation=person.organisation,
                role=person.role,
                language=person.language,
                status=p.status.value,
                session_key=chosen.key if chosen else None,
                session_title=chosen.title if chosen else None,
                dietary=p.dietary or "",
                companion_of_name=host[1].name if host else None,
                companion_of_email=display_email(host[1].email) if host else None,
                companions=tuple(brought.get(p.id, ())),
                tentative=is_tentative(p),
                waitlist_seq=p.waitlist_seq,
            )
        )
    return sorted(rows, key=lambda r: (r.name.casefold(), r.email, r.participant_id))


def find_participant(db: Session, reference: str) -> int:
    """A participant id from an id or an email address (which must be unambiguous)."""
    text = reference.strip()
    if text.isdigit():
        if db.get(Participant, int(text)) is None:
            raise NotFound(f"no participant with id {text}")
        return int(text)
    rows = db.execute(
        select(Participant.id, Event.slug)
        .join(Person, Person.id == Participant.person_id)
        .join(Event, Event.id == Participant.event_id)
        .where(Person.email == text.lower())
        .order_by(Participant.id)
    ).all()
    if not rows:
        raise NotFound(
            f"{text!r} is not a participant of any event; import them with "
            "`rsvpmail invitees import EVENT FILE` first, then resolve"
        )
    if len(rows) > 1:
        choices = ", ".join(f"{pid} ({slug})" for pid, slug in rows)
        raise NotFound(f"{text!r} takes part in several events; give the id: {choices}")
    return int(rows[0][0])


def is_tentative(participant: Participant) -> bool:
    """Invited and answered "maybe" (no seat held). A later yes or no is the answer that
    counts, even though the rules keep `tentative_at` as a record of the maybe."""
    return participant.status is PS.INVITED and participant.tentative_at is not None


def review_event(db: Session, inbound_id: int, participant_id: int | None = None) -> Event | None:
    """The event a review decision will apply to, when it is known beforehand: the named
    participant's, else the event the message was matched to (None: matched to no event)."""
    if participant_id is not None:
        participant = db.get(Participant, participant_id)
        if participant is not None:
            return participant.event
    message = db.get(InboundMessage, inbound_id)
    if message is None or message.event_id is None:
        return None
    return db.get(Event, message.event_id)


def session_key(db: Session, event: Event, key: str) -> str:
    """The event's deelsessie key for `key` (case and spaces ignored); NotFound, naming the
    event's sessions, when it has no such session."""
    return _session_keys(db, event)[_session_id(db, event, key)]


def display_email(address: str) -> str:
    """'' for placeholder addresses (RFC 2606 `.invalid`) given to companions without one."""
    domain = address.rpartition("@")[2].lower()
    return "" if domain == "invalid" or domain.endswith(".invalid") else address


# --------------------------------------------------------------------------- audit


# The outbox machine's claim rows: a worker taking a mail (pending → sending) and a lease
# running out (sending → pending, "lease of … expired"). Each mail has one or more; they say
# nothing about the mail's outcome, which its own row (→ sent, failed, …) does.
_OUTBOX_CLAIM: Any = and_(
    AuditEntry.machine == "outbound",
    or_(
        and_(AuditEntry.old_status == "pending", AuditEntry.new_status == "sending"),
        and_(
            AuditEntry.old_status == "sending",
            AuditEntry.new_status == "pending",
            AuditEntry.reason.like("lease of %"),
        ),
    ),
)


def audit_trail(
    db: Session,
    event: Event,
    *,
    person_email: str | None = None,
    limit: int | None = None,
    outbox_claims: bool = True,
) -> list[AuditRow]:
    """The event's audit entries, oldest first (the newest `limit` when given).

    With `person_email`: what happened to that person in this event, plus what happened to
    the messages they sent (inbound rows carry no person, only a sender address).
    `outbox_claims=False` leaves out the outbox's claim rows (see `hidden_outbox_claims`).
    """
    tz = event_tz(event)
    condition = _audit_condition(db, event, person_email)
    if not outbox_claims:
        condition = and_(condition, not_(_OUTBOX_CLAIM))
    query = (
        select(AuditEntry, Person, InboundMessage.message_id)
        .outerjoin(Person, Person.id == AuditEntry.person_id)
        .outerjoin(InboundMessage, InboundMessage.id == AuditEntry.inbound_message_id)
        .where(condition)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = [
        AuditRow(
            id=entry.id,
            at=entry.at,
            at_local=entry.at.astimezone(tz),
            actor=entry.actor,
            machine=entry.machine,
            entity_id=entry.entity_id,
            person_email=display_email(person.email) if person else None,
            person_name=person.name if person else None,
            old_status=entry.old_status,
            new_status=entry.new_status,
            reason=entry.reason,
            inbound_id=entry.inbound_message_id,
            source_message_id=message_id,
        )
        for entry, person, message_id in db.execute(query)
    ]
    rows.reverse()
    return rows


def hidden_outbox_claims(db: Session, event: Event, *, person_email: str | None = None) -> int:
    """How many claim rows `audit_trail(..., outbox_claims=False)` leaves out."""
    condition = and_(_audit_condition(db, event, person_email), _OUTBOX_CLAIM)
    return db.scalar(select(func.count()).select_from(AuditEntry).where(condition)) or 0


def _audit_condition(db: Session, event: Event, person_email: str | None) -> Any:
    if person_email is None:
        return AuditEntry.event_id == event.id
    return _person_condition(db, event, person_email.strip().lower())


def _person_condition(db: Session, event: Event, address: str) -> Any:
    person_id = db.scalar(select(Person.id).where(Person.email == address))
    sent_by_them = select(InboundMessage.id).where(
        func.lower(InboundMessage.from_address) == address,
        or_(InboundMessage.event_id == event.id, InboundMessage.event_id.is_(None)),
    )
    if person_id is None and db.scalar(sent_by_them.limit(1)) is None:
        raise NotFound(f"no person or message with address {address!r} in event {event.slug}")
    their_messages = and_(AuditEntry.machine == "inbound", AuditEntry.entity_id.in_(sent_by_them))
    if person_id is None:  # `person_id == None` would match every entry without a person
        return their_messages
    return or_(
        and_(AuditEntry.event_id == event.id, AuditEntry.person_id == person_id), their_messages
    )


# --------------------------------------------------------------------------- helpers


def event_tz(event: Event) -> ZoneInfo:
    return _zone(event.timezone)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # validated on load; never fail a report on it
        return ZoneInfo(DEFAULT_TIMEZONE)


def _roster(db: Session, event: Event, given: Roster | None) -> Roster:
    """The roster a caller already loaded (status_report loads it once for every part)."""
    return _participants(db, event) if given is None else given


def _participants(db: Session, event: Event) -> Roster:
    rows = db.execute(
        select(Participant, Person)
        .join(Person, Person.id == Participant.person_id)
        .where(Participant.event_id == event.id)
        .order_by(Participant.id)
    )
    return [(participant, person) for participant, person in rows]


def _session_keys(db: Session, event: Event) -> dict[int, str]:
    rows = db.execute(
        select(EventSession.id, EventSession.key).where(EventSession.event_id == event.id)
    )
    return {session_id: key for session_id, key in rows}


def _session_id(db: Session, event: Event, key: str) -> int:
    keys = _session_keys(db, event)
    for session_id, session_key in keys.items():
        if session_key == key.strip().lower():
            return session_id
    known = ", ".join(sorted(keys.values())) or "none"
    raise NotFound(f"event {event.slug} has no session {key!r} (sessions: {known})")


def _entered_status(
    db: Session, ids: Iterable[int], status: Enum, *, machine: str = "participant"
) -> dict[int, datetime]:
    """When each entity last moved into `status`, from the audit trail."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = db.execute(
        select(AuditEntry.entity_id, func.max(AuditEntry.at))
        .where(
            AuditEntry.machine == machine,
            AuditEntry.new_status == str(status.value),
            AuditEntry.entity_id.in_(wanted),
        )
        .group_by(AuditEntry.entity_id)
    )
    return {int(entity): at for entity, at in rows if at is not None}


def _latest_reasons(
    db: Session, ids: Iterable[int], status: Enum, *, machine: str
) -> dict[int, str]:
    """The audit reason of each entity's latest move into `status` (why it is there)."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = db.execute(
        select(AuditEntry.entity_id, AuditEntry.reason)
        .where(
            AuditEntry.machine == machine,
            AuditEntry.new_status == str(status.value),
            AuditEntry.entity_id.in_(wanted),
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return {int(entity): reason for entity, reason in rows}  # later rows win


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
