"""Inbound mail: store it, understand it, match it to an invitation, decide who may act, apply.

No network IO: the IMAP reader (jobs/) calls, per message and in one transaction,

    inbound, new = record_inbound(db, raw, mailbox=..., uidvalidity=..., uid=...)
    if new: process_inbound(db, inbound)
    db.commit()

and only then moves the message on the server. A message is never lost: whatever goes
wrong while reading it ends as `quarantined` with the reason, and whatever is unclear ends
in `review` with the state untouched (the rules run in a savepoint that is rolled back).

Matching, first hit wins:
1. the token in a recipient address (To/Cc/Delivered-To/X-Original-To: ``aanmelden+<token>@``)
   or in the subject/body (``rsvp:<token>``, `Understanding.token`);
2. In-Reply-To/References naming one of our outbound Message-IDs → that mail's person+event;
3. the token in a calendar UID (``<token>@rsvpmail``);
4. the sender's address → the Person's one open invitation (several open events → review).

Who may act: only the invitee's own address (case-insensitive). Another address at the
same domain acts only when that domain is in the event's `trust.allowed_sender_domains`
(the audit then names the real sender as actor); anything else with a valid token — a
forward, a spoof, a guess — goes to review and is never applied. Even an address that may
act goes to review when the receiving server's Authentication-Results (only those of an
authserv-id in the event's `trust.trusted_authserv_ids`) report dmarc=fail, spf=fail, or
dkim=fail without any dkim=pass: the From: address is then probably forged.

Review reasons live in the audit row of the received → review transition (`list_review`).
"""

from __future__ import annotations

import dataclasses
import email.header
import email.parser
import email.policy
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import getaddresses, parseaddr
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, joinedload

from db.models import (
    AuditEntry,
    Event,
    InboundMessage,
    InboundStatus,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    Participant,
    ParticipantStatus,
    Person,
)
from workflows import authresults, tokens
from workflows.clock import now
from workflows.errors import NotFound, RsvpError
from workflows.event_config import SessionSpec
from workflows.events import event_config
from workflows.outbox import add_in_savepoint, can_insert_ignoring_conflicts, insert_new_row
from workflows.registration import (
    Outcome,
    ReplyContext,
    apply_reply,
    notify_organiser,
)
from workflows.transitions import record_creation, transition
from workflows.txcache import transaction_memo
from workflows.understanding import PersonMention, ReplyKind, Understanding

N = InboundStatus
HEADER_SCAN_BYTES = 256_000
MAX_SUBJECT = 998
MAX_ADDRESS = 320
MAX_ERROR = 4000
# References looked up per message; a real thread rarely has more (In-Reply-To comes first).
MAX_REFERENCES = 50
_MESSAGE_ID_RE = re.compile(r"<[^<>\s]{1,990}>")
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
MAX_LOGGED_REASON = 200
log = logging.getLogger("rsvpmail.inbound")


# --------------------------------------------------------------------------- text hygiene


def _clean(text: str, limit: int | None = None) -> str:
    """Text safe for both databases: no NUL (PostgreSQL refuses it), no lone surrogates."""
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit is not None else text


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- the envelope


@dataclass(frozen=True)
class Envelope:
    """The header facts read without the parser (which may be slow or fail)."""

    message_id: str
    from_address: str
    subject: str
    recipients: tuple[str, ...]
    references: tuple[str, ...]


def synthetic_message_id(raw: bytes) -> str:
    return f"<{hashlib.sha256(raw).hexdigest()}@rsvpmail.invalid>"


def read_envelope(raw: bytes) -> Envelope:
    """Message-ID, sender, subject, recipients and references; never raises."""
    return _envelope_of(bytes(raw))


# Recording, choosing the parser's sessions and matching each need the envelope of the same
# bytes within one transaction: parse the headers once. Small, because raw may be large.
@lru_cache(maxsize=8)
def _envelope_of(raw: bytes) -> Envelope:
    msg = _parse_headers(raw)
    if msg is None:
        return Envelope(synthetic_message_id(raw), "", "", (), ())
    message_id = _message_id(_header(msg, "Message-ID")) or synthetic_message_id(raw)
    from_address = _clean(parseaddr(_header(msg, "From"))[1].strip().lower(), MAX_ADDRESS)
    recipients: list[str] = []
    try:
        values = [v for name in _RECIPIENT_HEADERS for v in _all_headers(msg, name)]
        recipients = [_clean(a.lower()) for _, a in getaddresses(values) if "@" in a]
    except Exception:
        recipients = []
    refs = _MESSAGE_ID_RE.findall(_header(msg, "In-Reply-To"))
    refs += [
        r for r in reversed(_MESSAGE_ID_RE.findall(_header(msg, "References"))) if r not in refs
    ]
    return Envelope(
        message_id=message_id,
        from_address=from_address if "@" in from_address else "",
        subject=_clean(_header(msg, "Subject"), MAX_SUBJECT),
        recipients=tuple(recipients),
        references=tuple(_clean(r) for r in refs),
    )


def _message_id(value: str) -> str | None:
    """The id in angle brackets; a bare ``id@host`` (some clients) gets its brackets back."""
    found = _MESSAGE_ID_RE.search(value)
    if found:
        return _clean(found.group(0))
    bare = value.strip()
    if bare and len(bare) <= 990 and "@" in bare and not re.search(r"[\s<>]", bare):
        return _clean(f"<{bare}>")
    return None


def _parse_headers(raw: bytes) -> Message | None:
    try:
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        return parser.parsebytes(bytes(raw[:HEADER_SCAN_BYTES]))
    except Exception:
        return None


def _all_headers(msg: Message, name: str) -> list[str]:
    try:
        return [_decode(v) for v in (msg.get_all(name) or [])]
    except Exception:
        return []


def _header(msg: Message, name: str) -> str:
    values = _all_headers(msg, name)
    return values[0] if values else ""


def _decode(value: object) -> str:
    text = str(value)
    try:
        decoded = str(email.header.make_header(email.header.decode_header(text)))
    except Exception:
        decoded = text
    # Split and strip, not `\s*\r?\n\s*`: that regex is quadratic on long runs of spaces.
    if "\n" not in decoded:
        return decoded.strip()
    return " ".join(p for p in (ln.strip() for ln in decoded.split("\n")) if p)


# --------------------------------------------------------------------------- recording


def record_inbound(
    db: Session, raw: bytes, *, mailbox: str, uidvalidity: int | None, uid: int | None
) -> tuple[InboundMessage, bool]:
    """Store a raw message (status received); (existing row, False) when seen before.

    Duplicates are recognised by Message-ID and by (mailbox, UIDVALIDITY, UID), so a
    message fetched twice, or delivered twice to our mailbox, is processed once.
    """
    raw = bytes(raw)
    env = read_envelope(raw)
    values = {
        "message_id": env.message_id,
        "mailbox": mailbox,
        "uidvalidity": uidvalidity,
        "uid": uid,
        "raw": raw,
        "raw_size": len(raw),
        "from_address": env.from_address,
        "subject": env.subject,
        "received_at": now(),
        "status": N.RECEIVED,
    }
    row = _insert_new(db, values)
    if row is None:  # seen before, or a concurrent reader stored the same message first
        existing = _find_existing(db, env.message_id, mailbox, uidvalidity, uid)
        if existing is None:
            raise RsvpError(f"inbound message {env.message_id} was neither stored nor found")
        return existing, False
    where = f"{mailbox} uid {uid}" if uid is not None else mailbox
    record_creation(db, row, reason=f"received in {where}", inbound_message_id=row.id)
    return row, True


def _insert_new(db: Session, values: dict[str, Any]) -> InboundMessage | None:
    """The new row, or None when its Message-ID or mailbox UID is stored already.

    One INSERT … ON CONFLICT DO NOTHING (`insert_new_row`) instead of a look-up, a savepoint
    and a unit-of-work flush; the raw bytes are not read back.
    """
    if not can_insert_ignoring_conflicts(db):
        return add_in_savepoint(db, InboundMessage(**values))
    return insert_new_row(db, InboundMessage, values, not_returned="raw")


def _find_existing(
    db: Session, message_id: str, mailbox: str, uidvalidity: int | None, uid: int | None
) -> InboundMessage | None:
    same = InboundMessage.message_id == message_id
    if uid is not None and uidvalidity is not None:
        same = or_(
            same,
            and_(
                InboundMessage.mailbox == mailbox,
                InboundMessage.uidvalidity == uidvalidity,
                InboundMessage.uid == uid,
            ),
        )
    return db.scalars(select(InboundMessage).where(same).limit(1)).first()


# --------------------------------------------------------------------------- processing


@dataclass(frozen=True)
class Decision:
    status: InboundStatus
    reason: str
    event_id: int | None = None
    invitation_id: int | None = None
    # For the log line, read while the invitation is at hand (`_about`).
    event_slug: str | None = None
    person_id: int | None = None


def _about(invitation: Invitation | None) -> dict[str, Any]:
    """The Decision fields that say which invitation (and event, person) it is about."""
    if invitation is None:
        return {}
    return {
        "event_id": invitation.event_id,
        "invitation_id": invitation.id,
        "event_slug": invitation.event.slug,
        "person_id": invitation.person_id,
    }


class _Undo(Exception):
    """Raised inside the rules' savepoint to roll it back (review: state untouched)."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


def process_inbound(db: Session, inbound: InboundMessage) -> InboundStatus:
    """Understand, match, decide and apply one received message in the caller's transaction.

    Returns the new status. A message not in `received` is left alone (idempotent).
    Database trouble (lost connection, deadlock) propagates so the caller rolls back and
    retries later; any other failure quarantines the message with the reason.
    """
    if inbound.status is not N.RECEIVED:
        return inbound.status
    try:
        understanding = _understand(db, inbound)
    except OperationalError:
        raise
    except Exception as exc:
        return _finish(db, inbound, Decision(N.QUARANTINED, f"could not read: {_describe(exc)}"))
    return process_understood(db, inbound, understanding)


def process_understood(
    db: Session, inbound: InboundMessage, understanding: Understanding
) -> InboundStatus:
    """`process_inbound` after parsing: store the reading, match, decide, apply.

    Separate so a reading can be replayed (and rules tested) without the parser.
    """
    if inbound.status is not N.RECEIVED:
        return inbound.status
    inbound.kind = understanding.kind.value
    inbound.classification = _json_safe(understanding.to_record())
    try:
        with db.begin_nested():
            decision = decide_and_apply(db, inbound, understanding)
            if decision.status is not N.PROCESSED:
                raise _Undo(decision)
    except _Undo as undo:
        decision = undo.decision
    except OperationalError:
        raise
    except Exception as exc:
        decision = Decision(N.QUARANTINED, f"rules failed: {_describe(exc)}")
    return _finish(db, inbound, decision)


def _describe(exc: BaseException) -> str:
    return _clean(f"{type(exc).__name__}: {exc}", MAX_ERROR)


def _finish(db: Session, inbound: InboundMessage, decision: Decision) -> InboundStatus:
    _log_decision(db, inbound, decision)
    if decision.event_id is not None:
        inbound.event_id = decision.event_id
    if decision.invitation_id is not None:
        inbound.invitation_id = decision.invitation_id
    if decision.status is N.QUARANTINED:
        inbound.error = decision.reason
    transition(
        db,
        inbound,
        decision.status,
        reason=_clean(decision.reason or decision.status.value, MAX_ERROR),
        inbound_message_id=inbound.id,
    )
    return decision.status


def _log_decision(db: Session, inbound: InboundMessage, decision: Decision) -> None:
    """One key=value line per decision: ids, kind, outcome and the short reason — never a
    body or an address (`_loggable_reason` replaces addresses); names stay in the audit."""
    event_id = decision.event_id if decision.event_id is not None else inbound.event_id
    invitation_id = (
        decision.invitation_id if decision.invitation_id is not None else inbound.invitation_id
    )
    slug, person_id = decision.event_slug, decision.person_id
    if slug is None and event_id is not None:
        event = db.get(Event, event_id)
        slug = event.slug if event is not None else None
    if person_id is None and invitation_id is not None:
        invitation = db.get(Invitation, invitation_id)
        person_id = invitation.person_id if invitation is not None else None
    fields = {
        "event": slug or "-",
        "person_id": person_id if person_id is not None else "-",
        "invitation_id": invitation_id if invitation_id is not None else "-",
        "inbound_id": inbound.id,
        "kind": inbound.kind or "-",
        "outcome": decision.status.value,
        "reason": _loggable_reason(decision.reason or decision.status.value),
    }
    log.info("inbound decision", extra={"fields": fields})


_ADDRESSISH_RE = re.compile(r"\S*@\S*")


def _loggable_reason(reason: str) -> str:
    """The reason without addresses (replaced by "<address>") and short: logs outlive the
    database rows, and must not carry personal data beyond ids."""
    first_line = reason.split("\n", 1)[0][: MAX_LOGGED_REASON * 2]
    return _ADDRESSISH_RE.sub("<address>", first_line)[:MAX_LOGGED_REASON]


def _understand(db: Session, inbound: InboundMessage) -> Understanding:
    from workflows.understand import understand  # the parser is heavy; load it when needed

    raw = inbound.raw or b""
    # Only reads of invitations and events, which the pending audit row of the receipt
    # cannot change: it is flushed with the reading's own update instead of on its own.
    with db.no_autoflush:
        specs, language = _parser_context(db, raw)
    return understand(raw, specs, default_language=language)


def _parser_context(db: Session, raw: bytes) -> tuple[list[SessionSpec], str]:
    """The deelsessies the parser should recognise: the addressed event's when the headers
    already tell it, else those of every event that has not ended."""
    env = read_envelope(raw)
    invitation = _invitation_from_tokens(db, _header_tokens(env))
    if invitation is None:
        invitation = _invitation_from_references(db, env.references)
    events: Sequence[Event]
    if invitation is not None:
        events = [invitation.event]
    else:
        events = db.scalars(select(Event).where(Event.ends_at > now()).order_by(Event.id)).all()
    specs: dict[str, SessionSpec] = {}
    for event in events:
        for s in event.sessions:
            spec = SessionSpec(
                key=s.key, title=s.title, aliases=tuple(s.aliases), capacity=s.capacity
            )
            specs.setdefault(s.key, spec)
    language = events[0].language if len(events) == 1 else "nl"
    return list(specs.values()), language


def decide_and_apply(db: Session, inbound: InboundMessage, u: Understanding) -> Decision:
    """Match, check the sender and apply the rules; the caller undoes anything not processed."""
    if u.kind is ReplyKind.BOUNCE:
        return _bounce(db, inbound, u)
    found = match(db, inbound, u)
    inv = found.invitation
    ids = _about(inv)
    if u.kind is ReplyKind.AUTO_REPLY:
        return Decision(N.PROCESSED, "automatic reply: nothing to do", **ids)
    if found.problem:
        return Decision(N.REVIEW, found.problem, **ids)
    if inv is None:
        return Decision(N.REVIEW, "no invitation matches this message")
    sender = (u.sender or inbound.from_address or "").lower()
    trust = check_sender(inv, sender, raw=inbound.raw or b"")
    if trust.problem:
        return Decision(N.REVIEW, trust.problem, **ids)
    participant = participant_for(db, inv, inbound)
    ctx = ReplyContext(
        db,
        inv.event,
        inbound=inbound,
        actor=trust.actor,
        notify_sender=not u.is_automatic,
    )
    outcome: Outcome = apply_reply(ctx, participant, u)
    if outcome.review:
        return Decision(N.REVIEW, f"{outcome.review} (matched by {found.via})", **ids)
    summary = outcome.summary or "nothing to change"
    return Decision(N.PROCESSED, f"{summary} (matched by {found.via}{trust.note})", **ids)


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Match:
    invitation: Invitation | None = None
    via: str = ""
    problem: str | None = None


def match(db: Session, inbound: InboundMessage, u: Understanding) -> Match:
    """The invitation a message is about (see the module docstring for the order)."""
    env = read_envelope(inbound.raw or b"")
    by_token = _invitation_from_tokens(db, [*_header_tokens(env), *_maybe(u.token)])
    if by_token is not None:
        return Match(by_token, "token")
    references = list(u.references) or list(env.references)
    by_reference = _invitation_from_references(db, references)
    if by_reference is not None:
        return Match(by_reference, "in-reply-to")
    uid_token = tokens.find_in_uid(u.calendar_uid) if u.calendar_uid else None
    by_uid = _invitation_from_tokens(db, _maybe(uid_token))
    if by_uid is not None:
        return Match(by_uid, "calendar uid")
    sender = (u.sender or inbound.from_address or "").lower()
    return _match_by_sender(db, sender)


def _maybe(value: str | None) -> list[str]:
    return [value] if value else []


def _header_tokens(env: Envelope) -> list[str]:
    found = [tokens.find_in_address(a) for a in env.recipients]
    found.append(tokens.find_in_text(env.subject))
    return [t for t in found if t]


def _invitation_from_tokens(db: Session, candidates: Sequence[str]) -> Invitation | None:
    """The invitation of the first candidate token that is one.

    Choosing the parser's sessions and matching both look the same token up: the invitation
    found first is remembered for the rest of the transaction (a token never moves to another
    invitation) and kept alive, so the second look-up costs no query. The token is compared
    again either way.
    """
    known: dict[str, Invitation] = transaction_memo(db, "invitation_by_token")
    for token in candidates:
        key = token.lower()
        invitation = known.get(key)
        if invitation is None or invitation not in db:
            invitation = _invitation_with_token(db, key)
        if invitation is not None and tokens.same_token(token, invitation.token):
            known[key] = invitation
            return invitation
    return None


def _invitation_with_token(db: Session, token: str) -> Invitation | None:
    """The invitation with everything reading and matching its reply asks next — the
    event, its deelsessies and the invitee — in one query instead of four."""
    return (
        db.scalars(
            select(Invitation)
            .where(Invitation.token == token)
            .options(
                joinedload(Invitation.event).joinedload(Event.sessions),
                joinedload(Invitation.person),
            )
        )
        .unique()
        .one_or_none()
    )


def _invitation_from_references(db: Session, references: Sequence[str]) -> Invitation | None:
    """The invitation of the first referenced Message-ID that is one of our mails.

    One query for all references, and only the first `MAX_REFERENCES` of them (In-Reply-To
    comes first): a header listing thousands of ids must not cost thousands of queries.
    """
    wanted = list(dict.fromkeys(references))[:MAX_REFERENCES]
    if not wanted:
        return None
    found = db.execute(
        select(
            OutboundMessage.message_id, OutboundMessage.person_id, OutboundMessage.event_id
        ).where(
            OutboundMessage.message_id.in_(wanted),
            OutboundMessage.person_id.is_not(None),
            OutboundMessage.event_id.is_not(None),
        )
    ).all()
    ours = {message_id: (person_id, event_id) for message_id, person_id, event_id in found}
    for message_id in wanted:
        if message_id not in ours:
            continue
        person_id, event_id = ours[message_id]
        invitation = db.scalar(
            select(Invitation).where(
                Invitation.event_id == event_id, Invitation.person_id == person_id
            )
        )
        if invitation is not None:
            return invitation
    return None


def _match_by_sender(db: Session, sender: str) -> Match:
    if not sender:
        return Match(problem="no sender address and no token")
    person = db.scalar(select(Person).where(Person.email == sender))
    if person is None:
        return Match()
    open_invitations = db.scalars(
        select(Invitation)
        .join(Event, Event.id == Invitation.event_id)
        .where(Invitation.person_id == person.id, Event.ends_at > now())
        .order_by(Invitation.id)
    ).all()
    if len(open_invitations) == 1:
        return Match(open_invitations[0], "sender address")
    if len(open_invitations) > 1:
        slugs = ", ".join(i.event.slug for i in open_invitations)
        return Match(problem=f"sender {sender} is invited to several events ({slugs}); which one?")
    return Match()


def participant_for(
    db: Session, invitation: Invitation, inbound: InboundMessage | None
) -> Participant:
    """The invitation's participant row (created as `invited` if it is somehow missing)."""
    participant = db.scalar(
        select(Participant).where(
            Participant.event_id == invitation.event_id,
            Participant.person_id == invitation.person_id,
        )
    )
    if participant is None:
        participant = Participant(
            event_id=invitation.event_id,
            person_id=invitation.person_id,
            invitation_id=invitation.id,
            status=ParticipantStatus.INVITED,
        )
        db.add(participant)
        record_creation(
            db,
            participant,
            reason="participant row missing for an invitation; created",
            inbound_message_id=inbound.id if inbound else None,
        )
    return participant


# --------------------------------------------------------------------------- trust


@dataclass(frozen=True)
class Trust:
    actor: str
    problem: str | None = None
    note: str = ""


def check_sender(invitation: Invitation, sender: str, *, raw: bytes = b"") -> Trust:
    """Whether `sender` may act on `invitation` (see the module docstring).

    An address that may act is still refused when our own receiving server says it was
    forged: a DMARC/SPF/DKIM failure in an Authentication-Results header of a trusted
    authserv-id (`authentication_problem`).
    """
    trust = _sender_identity(invitation, sender)
    if trust.problem is None:
        forged = authentication_problem(invitation, raw)
        if forged is not None:
            return Trust("", problem=f"{forged}; the From: address {sender} may be forged")
    return trust


def _sender_identity(invitation: Invitation, sender: str) -> Trust:
    owner = invitation.person.email
    if not sender:
        return Trust("", problem="the message has no sender address")
    if sender == owner:
        return Trust(sender[:200])
    sender_domain = sender.rpartition("@")[2]
    if sender_domain == owner.rpartition("@")[2]:
        allowed = event_config(invitation.event).allowed_sender_domains
        if sender_domain in allowed:
            return Trust(
                f"{sender} for {owner}"[:200],
                note=f"; sent by {sender} on behalf of {owner} (trusted domain)",
            )
        return Trust(
            "",
            problem=f"sent by {sender}, not by the invitee {owner} (same organisation, "
            f"but {sender_domain} is not a trusted sender domain for this event)",
        )
    return Trust("", problem=f"sent by {sender}, not by the invitee {owner} (forwarded?)")


def authentication_problem(invitation: Invitation, raw: bytes) -> str | None:
    """What the event's trusted receiving servers found wrong with the sender, or None.

    Headers of other authserv-ids are ignored: anyone can write them (workflows.authresults).
    """
    trusted = event_config(invitation.event).trusted_authserv_ids
    if not trusted or not raw:
        return None
    msg = _parse_headers(raw)
    if msg is None:
        return None
    try:
        values = [str(v) for v in (msg.get_all(authresults.HEADER_NAME) or [])]
    except Exception:
        return None
    problem = authresults.authentication_failure(values, trusted)
    return _clean(problem, MAX_ERROR) if problem else None


# --------------------------------------------------------------------------- bounces


def _bounce(db: Session, inbound: InboundMessage, u: Understanding) -> Decision:
    invitations = _bounced_invitations(db, u)
    ids = _about(invitations[0] if invitations else None)
    if not u.bounce_permanent:
        return Decision(N.PROCESSED, "temporary delivery problem: recorded only", **ids)
    if not invitations:
        return Decision(N.REVIEW, "permanent bounce that matches no invitation")
    reason = _bounce_reason(u)
    marked = []
    for invitation in invitations:
        if invitation.status not in (InvitationStatus.SENT, InvitationStatus.QUEUED):
            continue
        invitation.bounce_reason = reason
        transition(
            db,
            invitation,
            InvitationStatus.UNDELIVERABLE,
            reason=f"permanent bounce: {reason}"[:MAX_ERROR],
            inbound_message_id=inbound.id,
        )
        notify_organiser(
            db,
            invitation.event,
            key=f"organiser_notice:bounce:{invitation.id}",
            notice="undeliverable",
            facts={
                "name": invitation.person.name,
                "email": invitation.person.email,
                "reason": server_diagnostic(inbound.raw, invitation.person.email),
                **_bounced_person(db, invitation),
            },
        )
        marked.append(invitation.person.email)
    if not marked:
        return Decision(N.PROCESSED, "permanent bounce for an address already marked", **ids)
    return Decision(N.PROCESSED, f"undeliverable: {', '.join(marked)}", **ids)


def _bounced_person(db: Session, invitation: Invitation) -> dict[str, str]:
    """Who the bounced address is to the event, for the organiser's advice: `role` (an
    "invitee" from the list, or a "companion" / "substitute" named by `inviter` in a reply,
    whom a re-import cannot reach) and their participant `status`."""
    participant = db.scalar(
        select(Participant).where(
            Participant.event_id == invitation.event_id,
            Participant.person_id == invitation.person_id,
        )
    )
    status = str(participant.status) if participant is not None else ""
    if participant is not None and participant.companion_of is not None:
        inviter = participant.companion_of.person
        return {"role": "companion", "inviter": inviter.name or inviter.email, "status": status}
    if invitation.batch == "substitute":
        return {"role": "substitute", "inviter": _named_by(db, invitation), "status": status}
    return {"role": "invitee", "inviter": "", "status": status}


def _named_by(db: Session, invitation: Invitation) -> str:
    """Whose reply named this substitute: the invitee of the message that created the
    invitation (its creation audit), "" when that is not known (an answer recorded by hand)."""
    inviter = db.scalar(
        select(Person)
        .join(Invitation, Invitation.person_id == Person.id)
        .join(InboundMessage, InboundMessage.invitation_id == Invitation.id)
        .join(AuditEntry, AuditEntry.inbound_message_id == InboundMessage.id)
        .where(
            AuditEntry.machine == "invitation",
            AuditEntry.entity_id == invitation.id,
            AuditEntry.old_status.is_(None),
        )
        .limit(1)
    )
    return (inviter.name or inviter.email) if inviter is not None else ""


MAX_DIAGNOSTIC = 200


def server_diagnostic(raw: bytes | None, address: str) -> str:
    """What the receiving mail server said about `address` in a bounce, on one line of at
    most MAX_DIAGNOSTIC characters; "" when the bounce does not say (see
    `workflows.understand.bounce.server_diagnostic`, which reads it)."""
    from workflows.understand import bounce  # the parser package is heavy; load it when needed

    return _clean(bounce.server_diagnostic(raw, address, limit=MAX_DIAGNOSTIC))


def _bounce_reason(u: Understanding) -> str:
    text = "; ".join(u.notes) or u.reply_text or "permanent delivery failure"
    return _clean(text, 1000)


def _bounced_invitations(db: Session, u: Understanding) -> list[Invitation]:
    """By the token or our Message-ID in the bounced original, else by the bounced address
    (its invitations in the events we actually mailed it for)."""
    by_token = _invitation_from_tokens(db, _maybe(u.token))
    if by_token is not None:
        return [by_token]
    by_reference = _invitation_from_references(db, list(u.references))
    if by_reference is not None:
        return [by_reference]
    found: list[Invitation] = []
    for address in u.bounced_recipients:
        person = db.scalar(select(Person).where(Person.email == address.lower()))
        if person is None:
            continue
        mailed_events = select(OutboundMessage.event_id).where(
            OutboundMessage.recipient == person.email
        )
        found.extend(
            db.scalars(
                select(Invitation).where(
                    Invitation.person_id == person.id, Invitation.event_id.in_(mailed_events)
                )
            )
        )
    return found


# --------------------------------------------------------------------------- review queue


@dataclass(frozen=True)
class ReviewItem:
    inbound_id: int
    received_at: datetime
    from_address: str
    subject: str
    kind: str | None
    event_slug: str | None
    reason: str


def list_review(db: Session, event: Event | None = None) -> list[ReviewItem]:
    """Messages waiting for a human, oldest first. With `event`: that event's and the
    unmatched ones (an unmatched message may well be about it)."""
    query = select(InboundMessage).where(InboundMessage.status == N.REVIEW)
    if event is not None:
        query = query.where(
            or_(InboundMessage.event_id == event.id, InboundMessage.event_id.is_(None))
        )
    items = []
    for inbound in db.scalars(query.order_by(InboundMessage.received_at, InboundMessage.id)):
        slug = db.scalar(select(Event.slug).where(Event.id == inbound.event_id))
        items.append(
            ReviewItem(
                inbound_id=inbound.id,
                received_at=inbound.received_at,
                from_address=inbound.from_address,
                subject=inbound.subject,
                kind=inbound.kind,
                event_slug=slug,
                reason=_review_reason(db, inbound),
            )
        )
    return items


def _review_reason(db: Session, inbound: InboundMessage) -> str:
    reason = db.scalar(
        select(AuditEntry.reason)
        .where(
            AuditEntry.machine == "inbound",
            AuditEntry.entity_id == inbound.id,
            AuditEntry.new_status == N.REVIEW.value,
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    return reason or ""


_RESOLVABLE = (
    ReplyKind.ACCEPT,
    ReplyKind.DECLINE,
    ReplyKind.TENTATIVE,
    ReplyKind.QUESTION,
    ReplyKind.UNCLEAR,
)


# What the organiser can do with a message that is not (or no longer) waiting for review.
_WHAT_INSTEAD = {
    N.PROCESSED: "; to correct what it did: `rsvpmail answer EVENT EMAIL --as …`",
    N.QUARANTINED: "; `rsvpmail inbox release ID` reads it again, `inbox dismiss ID` closes it",
}


def resolve_review(
    db: Session,
    inbound_id: int,
    *,
    as_kind: ReplyKind,
    session: str | None = None,
    actor: str,
    companions: Sequence[PersonMention] | None = None,
    substitute: PersonMention | None = None,
    unsubscribe: bool = False,
    participant_id: int | None = None,
    note: str = "",
) -> InboundStatus:
    """A human decides what a message in review means; the same rules then apply.

    `as_kind=UNCLEAR` means "ignore": processed, nothing changes. Otherwise the stored
    reading is used with the kind (and `session`, `companions` when given, `substitute`,
    `unsubscribe`) overridden; the sender check is the human's to make, so it is skipped.
    The participant is matched as usual unless `participant_id` names it. If the rules
    still cannot apply it (e.g. too many companions), RsvpError says why and nothing changes.
    """
    inbound = db.scalars(
        select(InboundMessage).where(InboundMessage.id == inbound_id).with_for_update()
    ).first()
    if inbound is None:
        raise NotFound(f"no inbound message {inbound_id}")
    if inbound.status is not N.REVIEW:
        raise RsvpError(
            f"inbound message {inbound_id} is {inbound.status.value}, not waiting for review"
            + _WHAT_INSTEAD.get(inbound.status, "")
        )
    if as_kind not in _RESOLVABLE:
        kinds = ", ".join(k.value for k in _RESOLVABLE)
        raise RsvpError(f"resolve as one of {kinds}, not {as_kind.value}")
    why = f": {note}" if note else ""
    if as_kind is ReplyKind.UNCLEAR:
        return _resolved(db, inbound, actor, f"ignored by {actor}{why}; nothing changed")
    label = f"resolved by {actor} as {as_kind.value}{why}"
    base = _stored_understanding(inbound, as_kind)
    u = dataclasses.replace(
        base,
        kind=as_kind,
        session=session or base.session,
        companions=tuple(companions) if companions is not None else base.companions,
        substitute=substitute,
        has_question=as_kind is ReplyKind.QUESTION,
        mentions_cancellation=as_kind is ReplyKind.DECLINE,
        wants_unsubscribe=unsubscribe,
    )
    participant = _participant_to_resolve(db, inbound, u, participant_id)
    ctx = ReplyContext(
        db,
        participant.event,
        inbound=inbound,
        actor=actor[:200],
        notify_sender=not base.is_automatic,
    )
    try:
        with db.begin_nested():
            outcome = apply_reply(ctx, participant, u)
            if outcome.review:
                raise _Undo(Decision(N.REVIEW, outcome.review))
    except _Undo as undo:
        raise RsvpError(
            f"inbound message {inbound_id} cannot be applied as {as_kind.value}: "
            f"{undo.decision.reason}" + _no_room_hint(undo.decision.reason, participant, u)
        ) from None
    inbound.event_id = participant.event_id
    inbound.invitation_id = participant.invitation_id
    return _resolved(db, inbound, actor, f"{label}; {outcome.summary or 'nothing to change'}")


def _no_room_hint(reason: str | None, participant: Participant, u: Understanding) -> str:
    """What the organiser can do when the companions of a resolution do not fit."""
    if not u.companions or "no room" not in (reason or ""):
        return ""
    slug = participant.event.slug
    return (
        f"; either raise the capacity (`rsvpmail capacity {slug} N`) and resolve again, or "
        "resolve without the companion (--no-companions) and add them later with "
        f"`rsvpmail answer {slug} EMAIL --as accept --companion …` when a seat is free"
    )


def _stored_understanding(inbound: InboundMessage, kind: ReplyKind) -> Understanding:
    if inbound.classification:
        try:
            return Understanding.from_record(dict(inbound.classification))
        except (TypeError, ValueError, KeyError):
            pass
    return Understanding(kind=kind, sender=inbound.from_address or None)


def _participant_to_resolve(
    db: Session, inbound: InboundMessage, u: Understanding, participant_id: int | None
) -> Participant:
    if participant_id is not None:
        participant = db.get(Participant, participant_id)
        if participant is None:
            raise NotFound(f"no participant {participant_id}")
        return participant
    found = match(db, inbound, u)
    if found.invitation is None:
        raise RsvpError(
            f"inbound message {inbound.id} matches no invitation"
            + (f" ({found.problem})" if found.problem else "")
            + "; say which participant it is about (participant_id)"
        )
    return participant_for(db, found.invitation, inbound)


def _resolved(db: Session, inbound: InboundMessage, actor: str, resolution: str) -> InboundStatus:
    inbound.resolution = _clean(resolution, MAX_ERROR)
    inbound.resolved_at = now()
    # The server copy leaves the Review folder for Processed: the reader moves every decided
    # row whose move is not recorded (moved_at unset), as after `inbox release`/`dismiss`.
    inbound.moved_at = None
    transition(
        db,
        inbound,
        N.PROCESSED,
        reason=inbound.resolution,
        actor=actor[:200],
        inbound_message_id=inbound.id,
    )
    return N.PROCESSED


__all__ = [
    "Decision",
    "Envelope",
    "Match",
    "ReviewItem",
    "authentication_problem",
    "check_sender",
    "decide_and_apply",
    "list_review",
    "match",
    "process_inbound",
    "process_understood",
    "read_envelope",
    "record_inbound",
    "resolve_review",
]
