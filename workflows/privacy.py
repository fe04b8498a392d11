"""Privacy (AVG/GDPR): retention, a person's export, and the right to erasure.

rsvpmail holds personal data of public officials, so it keeps it only as long as the
organiser's config says (`[retention]` in the event TOML), counted from the event's end:

1. **raw messages** (`raw_messages_days_after_event`): the bytes of every inbound and sent
   message of the event are dropped (`raw = None`), as are the typed reply text, quoted
   names and notes inside the stored reading and the inbound subject. The rows stay
   (Message-ID, status, kind, dates), because de-duplication and the counts need them.
2. **personal data** (`personal_data_days_after_event`, never earlier than 1.): the event's
   rows lose everything that points at a person — sender addresses, recipients, dietary
   wishes, tokens, bounce texts, addresses and names in audit reasons — and every person
   whose *every* invitation/participation belongs to such events is anonymised (name,
   e-mail, organisation and role replaced; `Person.anonymised_at` set). Someone who is
   also invited to a newer event keeps their Person row; only the old event's rows about
   them are scrubbed.

Decisions worth knowing:

- The anonymous address is ``anon-<id>@anonymised.rsvpmail.invalid``: unique like the
  e-mail column must be, and in `.invalid` so `has_mailbox()` says no and nothing is ever
  sent to it. Re-importing the real address later creates a new Person.
- `from_address` of inbound mail is kept until the personal-data period (the review queue
  and the audit need to know who wrote); the subject goes with the raw bytes.
- Unsubscriptions are kept, pointing at the anonymised person, so the counts stay right;
  the link to the real address is gone, which is what anonymising means.
- Loop-brake counters (`AutoAnswerCount`, keyed by sender address) are deleted with the
  person, and any older than `AUTO_ANSWER_COUNT_DAYS` regardless.
- Inbound mail that matched no event is kept as long as the longest-lived event that was
  still open when it arrived (it may well have been about that event).
- Forgetting (`forget_person`) is about data, not registration: a registered person who
  asks to be forgotten keeps the seat as an anonymous participant, so seat counts, the
  waitlist and the caterer's numbers stay right. Their unsent mail is suppressed, and so is
  unsent organiser mail that names them; cancelling is a separate, explicit act.
- Copies on the mail server (processed folders, the Sent folder) are not touched here:
  workflows do no network IO. `PurgeReport.server_copies` lists what a jobs/ adapter
  should delete there, and the rows say it until that is done: an inbound row keeps its
  `server_folder`, sent mail gets `sent_copy_pending` (jobs/imap_housekeeping.py clears
  both once the server confirmed), so a deletion that failed is retried on the next run.
  A Message-ID that names the person is replaced by its hash (`anonymous_message_id`);
  the retry finds the copy by hashing the Message-IDs on the server, so the original is
  not kept anywhere, not even until the copy is gone.
- The purge runs daily but does not go through an event's rows again once it has: the
  event remembers when each period was purged (`raw_purged_at`, `personal_purged_at`), and
  a later run only looks again when something about the event is newer than that — mail
  that arrived or was resolved, mail queued or sent, an invitation, an audited change (the
  purge's own audit rows aside) — or mail is still waiting to be sent. Comparisons allow
  `IN_FLIGHT_MARGIN`, so a row stamped just before a purge but committed after it is
  still seen.

Nothing here logs a body, a subject, a name or an address: only ids and counts.
"""

from __future__ import annotations

import base64
import email.header
import email.policy
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email import message_from_bytes
from email.parser import BytesHeaderParser
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, union
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from db.models import (
    AuditEntry,
    AutoAnswerCount,
    Event,
    EventSession,
    InboundMessage,
    InboundStatus,
    Invitation,
    OutboundBody,
    OutboundMessage,
    OutboundStatus,
    Participant,
    Person,
    Unsubscription,
)
from workflows.clock import now
from workflows.errors import NotFound
from workflows.event_config import ConfigError, EventConfig
from workflows.events import event_config
from workflows.transitions import transition

log = logging.getLogger(__name__)

ANON_DOMAIN = "anonymised.rsvpmail.invalid"
ANON_NAME = "(anonymised)"
ADDRESS_REMOVED = "[address removed]"
NAME_REMOVED = "[name removed]"
BOUNCE_REASON_REMOVED = "permanent bounce (details removed)"
TOKEN_PREFIX = "anonymised"  # plus zero-padded id: never matches the token pattern
ANONYMOUS_MESSAGE_ID_SUFFIX = f"@{ANON_DOMAIN}>"  # see anonymous_message_id()
AUTO_ANSWER_COUNT_DAYS = 30
ACTOR = "privacy"
# Longer than any transaction lasts: rows are stamped when written, not when committed.
IN_FLIGHT_MARGIN = timedelta(hours=1)

# Looser than a validator on purpose: anything that looks like an address in free text goes.
_ADDRESS_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_UNRESOLVED = (InboundStatus.RECEIVED, InboundStatus.REVIEW, InboundStatus.QUARANTINED)
# What a reading may keep once nobody may know who wrote it: the answer, not the words.
_ANONYMOUS_READING_KEYS = (
    "kind",
    "session",
    "has_question",
    "mentions_cancellation",
    "wants_unsubscribe",
    "bounce_permanent",
    "language",
    "is_automatic",
)


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ServerCopy:
    """A message whose bytes were purged here but may still sit in a folder on the server."""

    direction: str  # "inbound" or "outbound" (our Sent folder)
    folder: str | None
    message_id: str


@dataclass
class PurgeReport:
    """What `purge_expired` did; `lines()` says it in words for the CLI."""

    events_raw_expired: list[str] = field(default_factory=list)
    events_personal_expired: list[str] = field(default_factory=list)
    events_skipped: list[str] = field(default_factory=list)  # config unreadable; with why
    events_up_to_date: list[str] = field(default_factory=list)  # purged, nothing new since
    inbound_raw_purged: int = 0
    unresolved_raw_purged: int = 0  # still received/review/quarantined when purged
    outbound_raw_purged: int = 0
    inbound_anonymised: int = 0
    outbound_anonymised: int = 0
    outbound_suppressed: int = 0
    participants_scrubbed: int = 0
    invitations_scrubbed: int = 0
    audit_entries_scrubbed: int = 0
    persons_anonymised: int = 0
    persons_kept: int = 0  # linked to an expired event, but also to one still running
    auto_answer_counts_deleted: int = 0
    server_copies: list[ServerCopy] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return (
            self.inbound_raw_purged
            + self.outbound_raw_purged
            + self.inbound_anonymised
            + self.outbound_anonymised
            + self.outbound_suppressed
            + self.participants_scrubbed
            + self.invitations_scrubbed
            + self.audit_entries_scrubbed
            + self.persons_anonymised
            + self.auto_answer_counts_deleted
        )

    def lines(self) -> list[str]:
        out = [
            f"events past raw-message retention: {_names(self.events_raw_expired)}",
            f"events past personal-data retention: {_names(self.events_personal_expired)}",
        ]
        if self.events_up_to_date:
            out.append(
                f"already purged, nothing new since: {_names(sorted(set(self.events_up_to_date)))}"
            )
        out += [f"skipped event {why}" for why in self.events_skipped]
        counts = (
            ("inbound messages: raw bytes purged", self.inbound_raw_purged),
            ("  of which still unresolved", self.unresolved_raw_purged),
            ("sent messages: raw bytes purged", self.outbound_raw_purged),
            ("inbound messages anonymised", self.inbound_anonymised),
            ("outbound messages anonymised", self.outbound_anonymised),
            ("unsent mails suppressed", self.outbound_suppressed),
            ("participants scrubbed (dietary)", self.participants_scrubbed),
            ("invitations scrubbed (token, bounce text)", self.invitations_scrubbed),
            ("audit entries scrubbed", self.audit_entries_scrubbed),
            ("persons anonymised", self.persons_anonymised),
            ("persons kept (invited to a later event)", self.persons_kept),
            ("loop-brake counters deleted", self.auto_answer_counts_deleted),
            ("copies that may remain on the mail server", len(self.server_copies)),
        )
        out += [f"{label}: {n}" for label, n in counts]
        return out


@dataclass
class ForgetReport:
    person_id: int
    invitations_scrubbed: int = 0
    participants_kept: int = 0  # anonymous rows that keep seats and counts right
    inbound_anonymised: int = 0
    inbound_mentioning_purged: int = 0  # other people's mail that named this person
    outbound_anonymised: int = 0
    outbound_suppressed: int = 0
    outbound_in_flight: int = 0  # being sent right now; cannot be stopped any more
    audit_entries_scrubbed: int = 0
    auto_answer_counts_deleted: int = 0
    unsubscriptions_kept: int = 0
    server_copies: list[ServerCopy] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"person {self.person_id} anonymised",
            f"invitations scrubbed (token, bounce text): {self.invitations_scrubbed}",
            f"participant rows kept anonymously (seats stay taken): {self.participants_kept}",
            f"inbound messages anonymised: {self.inbound_anonymised}",
            f"other inbound messages that named them, raw bytes purged: "
            f"{self.inbound_mentioning_purged}",
            f"outbound messages anonymised: {self.outbound_anonymised}",
            f"unsent mails suppressed: {self.outbound_suppressed}",
            f"mails being sent right now (could not be stopped): {self.outbound_in_flight}",
            f"audit entries scrubbed: {self.audit_entries_scrubbed}",
            f"loop-brake counters deleted: {self.auto_answer_counts_deleted}",
            f"unsubscriptions kept (anonymous): {self.unsubscriptions_kept}",
            f"copies on the mail server, deleted by the service's next housekeeping: "
            f"{len(self.server_copies)}",
        ]


def _names(slugs: Sequence[str]) -> str:
    return ", ".join(slugs) if slugs else "none"


# --------------------------------------------------------------------------- scrubbing text


def anonymous_email(person_id: int) -> str:
    return f"anon-{person_id}@{ANON_DOMAIN}"


def anonymous_token(invitation_id: int) -> str:
    return f"{TOKEN_PREFIX}{invitation_id:022d}"


def anonymous_message_id(message_id: str) -> str:
    """What a stored Message-ID that names a person becomes: its hash, still unique.

    Deterministic on purpose: housekeeping finds the copy on the mail server, which still
    carries the original header, by hashing the Message-IDs in a folder the same way, so
    nothing of the original has to be kept for a deletion that must be retried.
    """
    digest = hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    return f"<{digest}{ANONYMOUS_MESSAGE_ID_SUFFIX}"


@dataclass(frozen=True)
class Scrubber:
    """Removes the given people's names and addresses (and, optionally, every address)."""

    addresses: frozenset[str]
    names: tuple[re.Pattern[str], ...]
    every_address: bool = True

    @classmethod
    def for_people(cls, people: Iterable[Person], *, every_address: bool = True) -> Scrubber:
        addresses = {p.email.lower() for p in people if p.anonymised_at is None and p.email}
        names = {
            p.name.strip()
            for p in people
            if p.anonymised_at is None and len(p.name.strip()) >= 3 and "@" not in p.name
        }
        # Longest first, so "Karin Smit-de Vries" goes before "Karin Smit" would split it.
        patterns = tuple(
            re.compile(rf"(?<!\w){re.escape(n)}(?!\w)", re.IGNORECASE)
            for n in sorted(names, key=len, reverse=True)
        )
        return cls(frozenset(addresses), patterns, every_address)

    def text(self, value: str) -> str:
        out = value
        if self.every_address:
            out = _ADDRESS_RE.sub(_address_replacement, out)
        else:
            for address in self.addresses:
                out = re.sub(re.escape(address), ADDRESS_REMOVED, out, flags=re.IGNORECASE)
        for pattern in self.names:
            out = pattern.sub(NAME_REMOVED, out)
        return out

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value

    def mentioned_in(self, text: str) -> bool:
        low = text.lower()
        return any(a in low for a in self.addresses) or any(p.search(text) for p in self.names)


def _address_replacement(match: re.Match[str]) -> str:
    found = match.group(0)
    return found if found.lower().endswith("@" + ANON_DOMAIN) else ADDRESS_REMOVED


def _name_literals(people: Iterable[Person]) -> list[str]:
    return [p.name.strip() for p in people if len(p.name.strip()) >= 3 and "@" not in p.name]


def reading_without_free_text(reading: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored reading minus what the person typed: for the raw-message purge."""
    if reading is None or reading.get("anonymised"):
        return reading
    out = dict(reading)
    out["reply_text"] = ""
    out["notes"] = []
    out["dietary"] = None
    out["companions"] = [{**c, "name": ""} for c in reading.get("companions") or []]
    if isinstance(reading.get("substitute"), dict):
        out["substitute"] = {**reading["substitute"], "name": ""}
    return out


def anonymous_reading(reading: dict[str, Any] | None) -> dict[str, Any] | None:
    """Only what the answer was (kind, flags, session, how many companions): no person."""
    if reading is None or reading.get("anonymised"):
        return reading
    out = {k: reading[k] for k in _ANONYMOUS_READING_KEYS if k in reading}
    out["companion_count"] = len(reading.get("companions") or [])
    out["had_substitute"] = bool(reading.get("substitute"))
    out["anonymised"] = True
    return out


# --------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class Retention:
    event_id: int
    slug: str
    created_at: datetime
    ends_at: datetime
    raw_days: int
    personal_days: int
    raw_purged_at: datetime | None = None
    personal_purged_at: datetime | None = None

    @property
    def raw_until(self) -> datetime:
        # Anonymising also drops raw bytes, so raw never outlives personal data.
        return self.ends_at + timedelta(days=min(self.raw_days, self.personal_days))

    @property
    def personal_until(self) -> datetime:
        return self.ends_at + timedelta(days=self.personal_days)


def retention_of(event: Event) -> Retention:
    cfg = event_config(event)
    return Retention(
        event.id,
        event.slug,
        event.created_at,
        event.ends_at,
        cfg.raw_message_retention_days,
        cfg.personal_data_retention_days,
        event.raw_purged_at,
        event.personal_purged_at,
    )


def purge_expired(db: Session) -> PurgeReport:
    """Apply every event's retention now; idempotent. The caller owns the transaction.

    For a dry run, call it in a transaction and roll back: the report is then exactly what
    a real run would do.
    """
    at = now()
    report = PurgeReport()
    windows = _retentions(db, report)
    for w in windows:
        if w.raw_until <= at:
            report.events_raw_expired.append(w.slug)
            if _pass_due(db, w, w.raw_purged_at, report):
                _purge_event_raw(db, w, report)
                db.get_one(Event, w.event_id).raw_purged_at = at
    personal_expired = [w for w in windows if w.personal_until <= at]
    for w in personal_expired:
        report.events_personal_expired.append(w.slug)
        if _pass_due(db, w, w.personal_purged_at, report):
            _anonymise_event(db, w, report)
            db.get_one(Event, w.event_id).personal_purged_at = at
    _retain_unmatched_inbound(db, windows, at, report)
    _anonymise_expired_people(db, windows, {w.event_id for w in personal_expired}, report)
    report.auto_answer_counts_deleted += _delete_old_auto_answer_counts(db, at.date())
    db.flush()
    log.info(
        "privacy purge: %d raw-expired event(s), %d personal-expired event(s), %d change(s), "
        "%d person(s) anonymised",
        len(report.events_raw_expired),
        len(report.events_personal_expired),
        report.changed,
        report.persons_anonymised,
    )
    return report


def _retentions(db: Session, report: PurgeReport) -> list[Retention]:
    windows = []
    for event in db.scalars(select(Event).order_by(Event.id)):
        try:
            windows.append(retention_of(event))
        except ConfigError as exc:
            # One broken config must not stop retention for the others; it is reported.
            report.events_skipped.append(f"{event.slug}: stored config unreadable ({exc})")
            log.warning("privacy purge: event %s skipped, stored config unreadable", event.id)
    return windows


def _pass_due(db: Session, w: Retention, done_at: datetime | None, report: PurgeReport) -> bool:
    """Whether the event's rows need (another) pass: never done, or something new since."""
    if done_at is None or _changed_since(db, w.event_id, done_at - IN_FLIGHT_MARGIN):
        return True
    report.events_up_to_date.append(w.slug)
    return False


def _changed_since(db: Session, event_id: int, since: datetime) -> bool:
    """Whether any row of the event may hold data the last pass did not see.

    Every change of a status is audited with the event's id, so the audit trail covers
    registrations, bounces and reviews; the purge's own entries are already scrubbed.
    Unsent mail counts as new until it is sent (it keeps its bytes meanwhile).
    """
    newer = (
        select(AuditEntry.id).where(
            AuditEntry.event_id == event_id, AuditEntry.at >= since, AuditEntry.actor != ACTOR
        ),
        select(InboundMessage.id).where(
            _event_inbound_condition(event_id),
            or_(InboundMessage.received_at >= since, InboundMessage.resolved_at >= since),
        ),
        select(OutboundMessage.id).where(
            OutboundMessage.event_id == event_id,
            or_(
                OutboundMessage.created_at >= since,
                OutboundMessage.sent_at >= since,
                OutboundMessage.status.in_((OutboundStatus.PENDING, OutboundStatus.SENDING)),
            ),
        ),
        select(Invitation.id).where(
            Invitation.event_id == event_id, Invitation.created_at >= since
        ),
    )
    return any(db.scalar(query.limit(1)) is not None for query in newer)


def _event_inbound_condition(event_id: int) -> ColumnElement[bool]:
    """The event's inbound mail: matched to the event, or to one of its invitations.

    A UNION of the two, not `event_id = ? OR invitation_id IN (subquery)`: PostgreSQL
    cannot use an index for an OR with a subquery and reads the whole table instead.
    """
    matched = select(InboundMessage.id).where(InboundMessage.event_id == event_id)
    by_invitation = (
        select(InboundMessage.id)
        .join(Invitation, Invitation.id == InboundMessage.invitation_id)
        .where(Invitation.event_id == event_id)
    )
    return InboundMessage.id.in_(union(matched, by_invitation))


def _purge_event_raw(db: Session, w: Retention, report: PurgeReport) -> None:
    inbound = db.scalars(
        select(InboundMessage).where(
            _event_inbound_condition(w.event_id),
            or_(InboundMessage.raw.is_not(None), InboundMessage.subject != ""),
        )
    ).all()
    for row in inbound:
        _purge_inbound_raw(row, report)
    outbound = db.scalars(
        select(OutboundMessage)
        .options(selectinload(OutboundMessage.body))  # bytes in one query, not one per row
        .where(
            OutboundMessage.event_id == w.event_id,
            _has_raw(),
            OutboundMessage.status.in_(
                (OutboundStatus.SENT, OutboundStatus.FAILED, OutboundStatus.SUPPRESSED)
            ),
        )
    ).all()
    for out in outbound:
        _purge_outbound_raw(out, report.server_copies)
        report.outbound_raw_purged += 1


def _purge_inbound_raw(row: InboundMessage, report: PurgeReport) -> None:
    if row.raw is not None:
        report.inbound_raw_purged += 1
        if row.status in _UNRESOLVED:
            report.unresolved_raw_purged += 1
        report.server_copies.append(
            ServerCopy("inbound", row.server_folder or row.mailbox, row.message_id)
        )
    row.raw = None
    row.subject = ""
    row.classification = reading_without_free_text(row.classification)


def _has_raw() -> ColumnElement[bool]:
    """Outbound mail whose rendered bytes are still stored (they live in outbound_bodies)."""
    return OutboundMessage.body.has(OutboundBody.raw.is_not(None))


def _purge_outbound_raw(row: OutboundMessage, copies: list[ServerCopy]) -> None:
    if row.raw is not None and row.status is OutboundStatus.SENT:
        copies.append(ServerCopy("outbound", None, row.message_id))
        # Remembered on the row until housekeeping confirms the Sent-folder copy is gone.
        row.sent_copy_pending = True
    row.raw = None


def _people_of_event(db: Session, event_id: int) -> list[Person]:
    linked = or_(
        Person.id.in_(select(Invitation.person_id).where(Invitation.event_id == event_id)),
        Person.id.in_(select(Participant.person_id).where(Participant.event_id == event_id)),
    )
    return list(db.scalars(select(Person).where(linked)))


def _anonymise_event(db: Session, w: Retention, report: PurgeReport) -> None:
    """Scrub every row of the event that points at a person (the Person rows come later)."""
    event = db.get_one(Event, w.event_id)
    scrub = Scrubber.for_people(_people_of_event(db, w.event_id))
    report.participants_scrubbed += _scrub_participants(db, Participant.event_id == w.event_id)
    report.invitations_scrubbed += _scrub_invitations(db, Invitation.event_id == w.event_id)
    inbound = list(db.scalars(select(InboundMessage).where(_event_inbound_condition(w.event_id))))
    for row in inbound:
        report.inbound_anonymised += _anonymise_inbound(row, scrub, report.server_copies)
    outbound = db.scalars(
        select(OutboundMessage)
        .options(selectinload(OutboundMessage.body))  # bytes in one query, not one per row
        .where(OutboundMessage.event_id == w.event_id)
    ).all()
    for out in outbound:
        changed, suppressed = _anonymise_outbound(
            db, out, scrub, event, report.server_copies, "event past its personal-data retention"
        )
        report.outbound_anonymised += changed
        report.outbound_suppressed += suppressed
    about = or_(
        AuditEntry.event_id == w.event_id,
        AuditEntry.inbound_message_id.in_([r.id for r in inbound] or [-1]),
        and_(
            AuditEntry.machine == "inbound",
            AuditEntry.entity_id.in_([r.id for r in inbound] or [-1]),
        ),
    )
    report.audit_entries_scrubbed += _scrub_audit(db, about, scrub)


def _scrub_participants(db: Session, which: ColumnElement[bool]) -> int:
    rows = db.scalars(select(Participant).where(which, Participant.dietary.is_not(None))).all()
    n = 0
    for p in rows:
        p.dietary = None
        n += 1
    return n


def _scrub_invitations(db: Session, which: ColumnElement[bool]) -> int:
    n = 0
    for inv in db.scalars(select(Invitation).where(which)).all():
        before = (inv.token, inv.bounce_reason)
        # A fresh, deterministic token: old mail in someone's mailbox no longer links to it,
        # and a second run changes nothing.
        inv.token = anonymous_token(inv.id)
        if inv.bounce_reason is not None:
            inv.bounce_reason = BOUNCE_REASON_REMOVED
        n += before != (inv.token, inv.bounce_reason)
    return n


def _anonymise_inbound(row: InboundMessage, scrub: Scrubber, copies: list[ServerCopy]) -> int:
    before = _inbound_state(row)
    if row.raw is not None:
        copies.append(ServerCopy("inbound", row.server_folder or row.mailbox, row.message_id))
    row.raw = None
    row.from_address = ""
    row.subject = ""
    row.classification = anonymous_reading(row.classification)
    row.error = scrub.optional(row.error)
    row.resolution = scrub.optional(row.resolution)
    if scrub.mentioned_in(row.message_id):  # some clients put the sender in the Message-ID
        row.message_id = anonymous_message_id(row.message_id)
    return int(before != _inbound_state(row))


def _inbound_state(row: InboundMessage) -> tuple[Any, ...]:
    return (
        row.raw is None,
        row.from_address,
        row.subject,
        row.classification,
        row.error,
        row.resolution,
        row.message_id,
    )


def _anonymise_outbound(
    db: Session,
    row: OutboundMessage,
    scrub: Scrubber,
    event: Event | None,
    copies: list[ServerCopy],
    why: str,
    actor: str = ACTOR,
) -> tuple[int, int]:
    """(changed, suppressed). A row being sent right now keeps its bytes until it is done."""
    before = (row.raw is None, row.recipient, row.last_error, row.status)
    suppressed = 0
    if row.status is OutboundStatus.PENDING:
        transition(db, row, OutboundStatus.SUPPRESSED, reason=why, actor=actor)
        suppressed = 1
    if row.status is not OutboundStatus.SENDING:
        _purge_outbound_raw(row, copies)
    if not _is_organiser_address(row.recipient, event):
        row.recipient = anonymous_email(row.person_id) if row.person_id else f"anon@{ANON_DOMAIN}"
    row.last_error = scrub.optional(row.last_error)
    return int(before != (row.raw is None, row.recipient, row.last_error, row.status)), suppressed


def _is_organiser_address(address: str, event: Event | None) -> bool:
    """Notices to the event's contact are the organiser's mail, not an invitee's data."""
    if address.endswith("@" + ANON_DOMAIN):
        return False
    return event is not None and address.lower() in {
        event.contact_email.lower(),
        event.reply_address.lower(),
    }


def _scrub_audit(db: Session, which: ColumnElement[bool], scrub: Scrubber) -> int:
    n = 0
    for entry in db.scalars(select(AuditEntry).where(which)).all():
        reason, actor = scrub.text(entry.reason), scrub.text(entry.actor)[:200]
        if (reason, actor) != (entry.reason, entry.actor):
            entry.reason, entry.actor = reason, actor
            n += 1
    return n


def _containing(columns: Sequence[InstrumentedAttribute[Any]], needles: Sequence[str]) -> Any:
    """Rows where any column contains any needle, case-insensitively (both databases)."""
    return or_(
        *(
            func.lower(col).contains(needle.lower(), autoescape=True)
            for col in columns
            for needle in needles
        )
    )


# ------------------------------------------------------------------ unmatched inbound mail


def _retain_unmatched_inbound(
    db: Session, windows: Sequence[Retention], at: datetime, report: PurgeReport
) -> None:
    """Mail that matched no event lives as long as the longest-lived event that existed and
    was still open when it came."""
    rows = db.scalars(
        select(InboundMessage).where(
            InboundMessage.event_id.is_(None),
            InboundMessage.invitation_id.is_(None),
            or_(
                InboundMessage.raw.is_not(None),
                InboundMessage.from_address != "",
                InboundMessage.subject != "",
            ),
        )
    ).all()
    for row in rows:
        raw_until, personal_until = _unmatched_deadlines(row.received_at, windows)
        if personal_until <= at:
            scrub = Scrubber(frozenset(), (), every_address=True)
            report.inbound_anonymised += _anonymise_inbound(row, scrub, report.server_copies)
            which = or_(
                AuditEntry.inbound_message_id == row.id,
                and_(AuditEntry.machine == "inbound", AuditEntry.entity_id == row.id),
            )
            report.audit_entries_scrubbed += _scrub_audit(db, which, scrub)
        elif raw_until <= at and (row.raw is not None or row.subject):
            _purge_inbound_raw(row, report)


def _unmatched_deadlines(
    received_at: datetime, windows: Sequence[Retention]
) -> tuple[datetime, datetime]:
    open_then = [w for w in windows if w.created_at <= received_at < w.ends_at]
    if open_then:
        return max(w.raw_until for w in open_then), max(w.personal_until for w in open_then)
    # Arrived when no event was open: counted from its arrival, with the longest periods.
    personal_days = max(
        (w.personal_days for w in windows), default=EventConfig.personal_data_retention_days
    )
    raw_days = min(
        max((w.raw_days for w in windows), default=EventConfig.raw_message_retention_days),
        personal_days,
    )
    return received_at + timedelta(days=raw_days), received_at + timedelta(days=personal_days)


# --------------------------------------------------------------------------- persons


def _anonymise_expired_people(
    db: Session, windows: Sequence[Retention], expired: set[int], report: PurgeReport
) -> None:
    if not expired:
        return
    live = [w.event_id for w in windows if w.event_id not in expired]
    linked_to_expired = or_(
        Person.id.in_(select(Invitation.person_id).where(Invitation.event_id.in_(expired))),
        Person.id.in_(select(Participant.person_id).where(Participant.event_id.in_(expired))),
    )
    linked_to_live = or_(
        Person.id.in_(select(Invitation.person_id).where(Invitation.event_id.in_(live))),
        Person.id.in_(select(Participant.person_id).where(Participant.event_id.in_(live))),
    )
    # Events whose config could not be read count as live: never anonymise on a guess.
    skipped = select(Event.id).where(Event.id.not_in([w.event_id for w in windows]))
    linked_to_skipped = or_(
        Person.id.in_(select(Invitation.person_id).where(Invitation.event_id.in_(skipped))),
        Person.id.in_(select(Participant.person_id).where(Participant.event_id.in_(skipped))),
    )
    candidates = list(
        db.scalars(
            select(Person)
            .where(Person.anonymised_at.is_(None), linked_to_expired)
            .order_by(Person.id)
        )
    )
    keep = set(
        db.scalars(
            select(Person.id).where(
                Person.id.in_([p.id for p in candidates] or [-1]),
                or_(linked_to_live, linked_to_skipped),
            )
        )
    )
    report.persons_kept += len(keep)
    for person in candidates:
        if person.id in keep:
            continue
        counts = _anonymise_person(
            db, person, reason="personal-data retention of their event(s) passed", actor=ACTOR
        )
        report.persons_anonymised += 1
        _add_counts(report, counts, _ANONYMISED_COUNTS)


def _anonymise_person(db: Session, person: Person, *, reason: str, actor: str) -> ForgetReport:
    """Scrub what is keyed by the person's address or name anywhere, then the Person row."""
    counts = ForgetReport(person.id)
    scrub = Scrubber.for_people([person])
    address = person.email
    for row in db.scalars(
        select(InboundMessage).where(InboundMessage.from_address == address)
    ).all():
        counts.inbound_anonymised += _anonymise_inbound(row, scrub, counts.server_copies)
    outbound = db.scalars(
        select(OutboundMessage)
        .options(selectinload(OutboundMessage.body))  # bytes in one query, not one per row
        .where(or_(OutboundMessage.person_id == person.id, OutboundMessage.recipient == address))
    ).all()
    for out in outbound:
        changed, suppressed = _anonymise_outbound(
            db, out, scrub, _event_of(db, out.event_id), counts.server_copies, reason, actor
        )
        counts.outbound_anonymised += changed
        counts.outbound_suppressed += suppressed
        counts.outbound_in_flight += out.status is OutboundStatus.SENDING
    counts.audit_entries_scrubbed += _scrub_everywhere(db, person, scrub)
    counts.auto_answer_counts_deleted += _delete_auto_answer_counts(db, address)
    _overwrite_person(db, person, reason=reason, actor=actor)
    return counts


def _event_of(db: Session, event_id: int | None) -> Event | None:
    return db.get(Event, event_id) if event_id is not None else None


def _scrub_everywhere(db: Session, person: Person, scrub: Scrubber) -> int:
    """Free-text columns anywhere that still name the person; returns audit rows changed."""
    needles = sorted(scrub.addresses) + _name_literals([person])
    if not needles:
        return 0
    audit_which = or_(
        AuditEntry.person_id == person.id,
        _containing((AuditEntry.reason, AuditEntry.actor), needles),
    )
    changed = _scrub_audit(db, audit_which, scrub)
    for row in db.scalars(
        select(InboundMessage).where(
            _containing((InboundMessage.error, InboundMessage.resolution), needles)
        )
    ).all():
        row.error, row.resolution = scrub.optional(row.error), scrub.optional(row.resolution)
    for out in db.scalars(
        select(OutboundMessage).where(_containing((OutboundMessage.last_error,), needles))
    ).all():
        out.last_error = scrub.optional(out.last_error)
    for inv in db.scalars(
        select(Invitation).where(_containing((Invitation.bounce_reason,), needles))
    ).all():
        inv.bounce_reason = BOUNCE_REASON_REMOVED
    return changed


def _overwrite_person(db: Session, person: Person, *, reason: str, actor: str) -> None:
    person.name = ANON_NAME
    person.email = anonymous_email(person.id)
    person.organisation = ""
    person.role = ""
    person.anonymised_at = now()
    # Persons have no status machine; this row records that (not whom) we anonymised.
    db.add(
        AuditEntry(
            actor=actor[:200],
            machine="person",
            entity_id=person.id,
            person_id=person.id,
            old_status=None,
            new_status="anonymised",
            reason=reason,
        )
    )


def _delete_auto_answer_counts(db: Session, address: str) -> int:
    result = db.execute(delete(AutoAnswerCount).where(AutoAnswerCount.sender == address))
    return int(getattr(result, "rowcount", 0) or 0)


def _delete_old_auto_answer_counts(db: Session, today: date) -> int:
    cutoff = today - timedelta(days=AUTO_ANSWER_COUNT_DAYS)
    result = db.execute(delete(AutoAnswerCount).where(AutoAnswerCount.day < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


# --------------------------------------------------------------------------- forget


def _person_by_email(db: Session, address: str) -> Person:
    person = db.scalar(select(Person).where(Person.email == address.strip().lower()))
    if person is None:
        raise NotFound("no person with that e-mail address (never known, or already anonymised)")
    return person


def forget_person(db: Session, email_address: str, actor: str) -> ForgetReport:
    """Erase a person's data now (right to erasure), whatever the retention says.

    What remains is anonymous: their participant rows (seats stay taken, counts stay right),
    the statuses and dates of their messages, their unsubscriptions. Unsent mail to them is
    suppressed; other people's mail that names them loses its raw bytes. The caller commits.
    """
    person = _person_by_email(db, email_address)
    scrub = Scrubber.for_people([person])
    invitation_ids = list(
        db.scalars(select(Invitation.id).where(Invitation.person_id == person.id))
    )
    event_ids = set(
        db.scalars(select(Invitation.event_id).where(Invitation.person_id == person.id))
    )
    event_ids |= set(
        db.scalars(select(Participant.event_id).where(Participant.person_id == person.id))
    )
    why = "person asked to be forgotten (right to erasure)"
    pre = ForgetReport(person.id)
    pre.invitations_scrubbed = _scrub_invitations(db, Invitation.person_id == person.id)
    _scrub_participants(db, Participant.person_id == person.id)
    pre.participants_kept = len(
        list(db.scalars(select(Participant.id).where(Participant.person_id == person.id)))
    )
    own = list(
        db.scalars(
            select(InboundMessage).where(
                or_(
                    InboundMessage.invitation_id.in_(invitation_ids or [-1]),
                    InboundMessage.from_address == person.email,
                )
            )
        )
    )
    for row in own:
        pre.inbound_anonymised += _anonymise_inbound(row, scrub, pre.server_copies)
    pre.inbound_mentioning_purged = _purge_mentions_inbound(
        db, scrub, event_ids, {r.id for r in own}, pre.server_copies
    )
    about = or_(
        AuditEntry.inbound_message_id.in_([r.id for r in own] or [-1]),
        and_(
            AuditEntry.machine == "inbound", AuditEntry.entity_id.in_([r.id for r in own] or [-1])
        ),
    )
    pre.audit_entries_scrubbed += _scrub_audit(db, about, scrub)
    organiser = _suppress_mentions_outbound(db, scrub, event_ids, pre.server_copies, why, actor)
    pre.outbound_anonymised += organiser[0]
    pre.outbound_suppressed += organiser[1]
    pre.unsubscriptions_kept = len(
        list(db.scalars(select(Unsubscription.id).where(Unsubscription.person_id == person.id)))
    )
    rest = _anonymise_person(db, person, reason=why, actor=actor)
    db.flush()
    report = _merge(pre, rest)
    log.info(
        "privacy forget: person %d anonymised by request; %d inbound, %d outbound, %d suppressed",
        person.id,
        report.inbound_anonymised,
        report.outbound_anonymised,
        report.outbound_suppressed,
    )
    return report


# What anonymising a person counts, summed into a purge's or a forget's report.
_ANONYMISED_COUNTS = (
    "inbound_anonymised",
    "outbound_anonymised",
    "outbound_suppressed",
    "audit_entries_scrubbed",
    "auto_answer_counts_deleted",
)


def _add_counts(
    into: PurgeReport | ForgetReport, counts: ForgetReport, names: Sequence[str]
) -> None:
    for name in names:
        setattr(into, name, getattr(into, name) + getattr(counts, name))
    into.server_copies.extend(counts.server_copies)


def _merge(a: ForgetReport, b: ForgetReport) -> ForgetReport:
    _add_counts(a, b, (*_ANONYMISED_COUNTS, "outbound_in_flight"))
    return a


def _purge_mentions_inbound(
    db: Session, scrub: Scrubber, event_ids: set[int], skip: set[int], copies: list[ServerCopy]
) -> int:
    """Other people's mail that names the person (a colleague bringing them along)."""
    rows = db.scalars(
        select(InboundMessage).where(
            or_(
                InboundMessage.event_id.in_(sorted(event_ids) or [-1]),
                InboundMessage.event_id.is_(None),
            ),
            InboundMessage.id.not_in(sorted(skip) or [-1]),
        )
    ).all()
    named = Scrubber(scrub.addresses, scrub.names, every_address=False)
    n = 0
    for row in rows:
        in_raw = row.raw is not None and _message_mentions(row.raw, scrub)
        before = (row.subject, row.classification)
        row.subject = named.text(row.subject)
        row.classification = named.json(row.classification)
        if in_raw:
            copies.append(ServerCopy("inbound", row.server_folder or row.mailbox, row.message_id))
            row.raw = None
        n += in_raw or before != (row.subject, row.classification)
    return n


def _suppress_mentions_outbound(
    db: Session,
    scrub: Scrubber,
    event_ids: set[int],
    copies: list[ServerCopy],
    why: str,
    actor: str,
) -> tuple[int, int]:
    """Organiser notices and forwarded questions that name the person."""
    rows = db.scalars(
        select(OutboundMessage)
        .options(selectinload(OutboundMessage.body))  # bytes in one query, not one per row
        .where(
            OutboundMessage.event_id.in_(sorted(event_ids) or [-1]),
            OutboundMessage.person_id.is_(None),
            _has_raw(),
        )
    ).all()
    changed = suppressed = 0
    for row in rows:
        if row.raw is None or not _message_mentions(row.raw, scrub):
            continue
        if row.status is OutboundStatus.PENDING:
            transition(db, row, OutboundStatus.SUPPRESSED, reason=why, actor=actor)
            suppressed += 1
        if row.status is not OutboundStatus.SENDING:
            _purge_outbound_raw(row, copies)
            changed += 1
    return changed, suppressed


def _message_mentions(raw: bytes, scrub: Scrubber) -> bool:
    """Whether the decoded message (headers, text parts, attached messages) names them."""
    if scrub.mentioned_in(raw.decode("utf-8", "replace")):
        return True
    try:
        return scrub.mentioned_in(_message_text(raw))
    except Exception:  # an unreadable message: judged by its bytes alone, as above
        return False


def _message_text(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=email.policy.default)
    parts: list[str] = [str(v) for v in msg.values()]
    for part in msg.walk():
        parts.extend(str(v) for v in part.values())
        if part.get_content_maintype() == "text":
            try:
                parts.append(str(part.get_content()))
            except Exception:
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    parts.append(payload.decode("utf-8", "replace"))
    return "\n".join(parts)


# --------------------------------------------------------------------------- export


def export_person(db: Session, email_address: str, *, include_raw: bool = False) -> dict[str, Any]:
    """Everything rsvpmail holds about a person, as JSON-serialisable data (right of access).

    Raw message bytes only with `include_raw` (base64), since they hold other people's
    words too (quoted mail, colleagues in Cc).
    """
    person = _person_by_email(db, email_address)
    invitations = list(
        db.scalars(
            select(Invitation).where(Invitation.person_id == person.id).order_by(Invitation.id)
        )
    )
    inbound = list(
        db.scalars(
            select(InboundMessage)
            .where(
                or_(
                    InboundMessage.invitation_id.in_([i.id for i in invitations] or [-1]),
                    InboundMessage.from_address == person.email,
                )
            )
            .order_by(InboundMessage.received_at, InboundMessage.id)
        )
    )
    outbound = list(
        db.scalars(
            select(OutboundMessage)
            .where(
                or_(
                    OutboundMessage.person_id == person.id,
                    OutboundMessage.recipient == person.email,
                )
            )
            .order_by(OutboundMessage.created_at, OutboundMessage.id)
        )
    )
    data = {
        "exported_at": _iso(now()),
        "person": _person_record(person),
        "invitations": [_invitation_record(i) for i in invitations],
        "participations": _participation_records(db, person),
        "inbound_messages": [_inbound_record(db, m, include_raw) for m in inbound],
        "outbound_messages": [_outbound_record(db, m, include_raw) for m in outbound],
        "audit": _audit_records(db, person, inbound, outbound),
        "unsubscriptions": [
            {"organiser": u.organiser, "source": u.source, "created_at": _iso(u.created_at)}
            for u in db.scalars(select(Unsubscription).where(Unsubscription.person_id == person.id))
        ],
        "auto_answer_counts": [
            {"day": a.day.isoformat(), "count": a.count}
            for a in db.scalars(
                select(AutoAnswerCount)
                .where(AutoAnswerCount.sender == person.email)
                .order_by(AutoAnswerCount.day)
            )
        ],
    }
    log.info(
        "privacy export: person %d, %d inbound, %d outbound", person.id, len(inbound), len(outbound)
    )
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _person_record(person: Person) -> dict[str, Any]:
    return {
        "id": person.id,
        "email": person.email,
        "name": person.name,
        "organisation": person.organisation,
        "role": person.role,
        "language": person.language,
        "created_at": _iso(person.created_at),
        "anonymised_at": _iso(person.anonymised_at),
    }


def _slug(db: Session, event_id: int | None) -> str | None:
    if event_id is None:
        return None
    return db.scalar(select(Event.slug).where(Event.id == event_id))


def _invitation_record(inv: Invitation) -> dict[str, Any]:
    return {
        "event": inv.event.slug,
        "event_title": inv.event.title,
        "token": inv.token,  # theirs: it is in every mail they got from us
        "batch": inv.batch,
        "status": inv.status.value,
        "sent_at": _iso(inv.sent_at),
        "bounce_reason": inv.bounce_reason,
        "created_at": _iso(inv.created_at),
    }


def _participation_records(db: Session, person: Person) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(Participant).where(Participant.person_id == person.id).order_by(Participant.id)
    )
    out = []
    for p in rows:
        companions = db.scalars(select(Participant).where(Participant.companion_of_id == p.id))
        head = p.companion_of
        out.append(
            {
                "event": p.event.slug,
                "status": p.status.value,
                "session": _session_record(p.session),
                "dietary": p.dietary,
                "waitlist_number": p.waitlist_seq,
                "offer_expires_at": _iso(p.offer_expires_at),
                "companions": [
                    {
                        "name": c.person.name,
                        "email": _shown(c.person.email),
                        "status": c.status.value,
                    }
                    for c in companions
                ],
                "companion_of": (
                    {"name": head.person.name, "email": _shown(head.person.email)} if head else None
                ),
                "created_at": _iso(p.created_at),
                "updated_at": _iso(p.updated_at),
            }
        )
    return out


def _shown(address: str) -> str:
    return "" if address.endswith(".invalid") else address


def _session_record(session: EventSession | None) -> dict[str, str] | None:
    return {"key": session.key, "title": session.title} if session is not None else None


def _inbound_record(db: Session, m: InboundMessage, include_raw: bool) -> dict[str, Any]:
    reading = m.classification or {}
    record: dict[str, Any] = {
        "id": m.id,
        "message_id": m.message_id,
        "received_at": _iso(m.received_at),
        "from_address": m.from_address,
        "subject": m.subject,
        "event": _slug(db, m.event_id),
        "kind": m.kind,
        "status": m.status.value,
        "reply_text": reading.get("reply_text", ""),
        "understood": {
            k: reading.get(k)
            for k in ("session", "companions", "substitute", "dietary", "wants_unsubscribe")
            if k in reading
        },
        "resolution": m.resolution,
        "raw_kept": m.raw is not None,
    }
    if include_raw and m.raw is not None:
        record["raw_base64"] = base64.b64encode(m.raw).decode("ascii")
    return record


def _outbound_record(db: Session, m: OutboundMessage, include_raw: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": m.id,
        "kind": m.kind,
        "event": _slug(db, m.event_id),
        "recipient": m.recipient,
        "subject": _subject_of(m.raw),
        "status": m.status.value,
        "created_at": _iso(m.created_at),
        "sent_at": _iso(m.sent_at),
        "raw_kept": m.raw is not None,
    }
    if include_raw and m.raw is not None:
        record["raw_base64"] = base64.b64encode(m.raw).decode("ascii")
    return record


def _subject_of(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        value = BytesHeaderParser().parsebytes(raw).get("Subject", "")
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:
        return None


def _audit_records(
    db: Session,
    person: Person,
    inbound: Sequence[InboundMessage],
    outbound: Sequence[OutboundMessage],
) -> list[dict[str, Any]]:
    inbound_ids = [m.id for m in inbound] or [-1]
    outbound_ids = [m.id for m in outbound] or [-1]
    which = or_(
        AuditEntry.person_id == person.id,
        AuditEntry.inbound_message_id.in_(inbound_ids),
        and_(AuditEntry.machine == "inbound", AuditEntry.entity_id.in_(inbound_ids)),
        and_(AuditEntry.machine == "outbound", AuditEntry.entity_id.in_(outbound_ids)),
    )
    entries = db.scalars(select(AuditEntry).where(which).order_by(AuditEntry.at, AuditEntry.id))
    return [
        {
            "at": _iso(e.at),
            "actor": e.actor,
            "machine": e.machine,
            "entity_id": e.entity_id,
            "event": _slug(db, e.event_id),
            "old_status": e.old_status,
            "new_status": e.new_status,
            "reason": e.reason,
        }
        for e in entries
    ]


__all__ = [
    "ANONYMOUS_MESSAGE_ID_SUFFIX",
    "ANON_DOMAIN",
    "ForgetReport",
    "PurgeReport",
    "Retention",
    "Scrubber",
    "ServerCopy",
    "anonymous_email",
    "anonymous_message_id",
    "anonymous_reading",
    "export_person",
    "forget_person",
    "purge_expired",
    "reading_without_free_text",
    "retention_of",
]
