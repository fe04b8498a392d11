"""The data model. All state of rsvpmail lives here, never in the scheduler.

Statuses are Python enums stored as short strings with a CHECK constraint (not native
PostgreSQL enums), so SQLite and PostgreSQL enforce exactly the same values and migrations
stay simple. Status changes go through `workflows.transitions.transition()` only.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import ColumnElement

from db.types import UTCDateTime
from workflows.clock import now

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class ParticipantStatus(enum.StrEnum):
    INVITED = "invited"
    REGISTERED = "registered"
    WAITLISTED = "waitlisted"
    OFFERED = "offered"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


# Statuses that hold a seat: an open offer holds it until it is taken or released.
SEAT_HOLDING = (ParticipantStatus.REGISTERED, ParticipantStatus.OFFERED)


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"  # imported, not yet queued
    QUEUED = "queued"  # invitation mail in the outbox
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"  # permanent bounce


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"  # raw bytes stored, not yet acted on
    PROCESSED = "processed"
    REVIEW = "review"  # waiting for a human
    QUARANTINED = "quarantined"  # could not be processed; kept with the reason


class OutboundStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker holding a lease
    SENT = "sent"
    FAILED = "failed"  # permanent failure; the server's reply is in last_error
    SUPPRESSED = "suppressed"  # not sent on purpose (unsubscribed, loop cap)


def _ts() -> Mapped[datetime]:
    return mapped_column(default=now)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("offer_expiry_hours > 0", name="offer_expiry_positive"),
        CheckConstraint("late_policy IN ('waitlist', 'closed')", name="late_policy_known"),
        CheckConstraint("language IN ('nl', 'en')", name="language_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    organiser: Mapped[str] = mapped_column(String(300), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    venue: Mapped[str] = mapped_column(String(300))
    address: Mapped[str] = mapped_column(String(300), default="")
    capacity: Mapped[int] = mapped_column(Integer)
    registration_deadline: Mapped[datetime]
    language: Mapped[str] = mapped_column(String(2), default="nl")
    reply_address: Mapped[str] = mapped_column(String(320))
    sender: Mapped[str] = mapped_column(String(400))
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(320))
    offer_expiry_hours: Mapped[int] = mapped_column(Integer, default=48)
    no_offers_within_hours: Mapped[int] = mapped_column(Integer, default=24)
    late_policy: Mapped[str] = mapped_column(String(10), default="waitlist")
    # The whole validated config (programme, reminders, follow-up links, …) for templates and
    # jobs; the columns above are the facts rules query on.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Hands out waitlist arrival numbers; bumped atomically so order is fair across workers.
    waitlist_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    # When the privacy purge last went through the event's rows for each retention period;
    # later purges skip the event while nothing about it changed since (workflows.privacy).
    raw_purged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    personal_purged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = _ts()
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)

    sessions: Mapped[list[EventSession]] = relationship(
        back_populates="event", order_by="EventSession.position"
    )


class EventSession(Base):
    """A deelsessie. Named EventSession so it is never confused with a database session."""

    __tablename__ = "event_sessions"
    __table_args__ = (
        UniqueConstraint("event_id", "key", name="uq_event_sessions_event_key"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    event: Mapped[Event] = relationship(back_populates="sessions")


class Person(Base):
    __tablename__ = "persons"
    __table_args__ = (
        CheckConstraint("language IN ('nl', 'en')", name="language_known"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(2), default="nl")
    created_at: Mapped[datetime] = _ts()
    anonymised_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("event_id", "person_id", name="uq_invitations_event_person"),
        CheckConstraint("length(token) >= 26", name="token_long_enough"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    batch: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[InvitationStatus] = mapped_column(
        _enum(InvitationStatus, "invitation_status"), default=InvitationStatus.PENDING
    )
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    bounce_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = _ts()

    event: Mapped[Event] = relationship()
    person: Mapped[Person] = relationship()


class Participant(Base):
    """A person's place in an event: invited, registered, waitlisted, …

    Companions brought along by an invitee are participants too, linked by `companion_of_id`;
    they are placed together with the invitee and never split silently.
    """

    __tablename__ = "participants"
    __table_args__ = (
        UniqueConstraint("event_id", "person_id", name="uq_participants_event_person"),
        UniqueConstraint("event_id", "waitlist_seq", name="uq_participants_event_waitlist_seq"),
        CheckConstraint(
            "status <> 'waitlisted' OR waitlist_seq IS NOT NULL", name="waitlisted_has_seq"
        ),
        CheckConstraint(
            "status <> 'offered' OR offer_expires_at IS NOT NULL", name="offer_has_expiry"
        ),
        CheckConstraint(
            "companion_of_id IS NULL OR companion_of_id <> id", name="not_own_companion"
        ),
        Index("ix_participants_event_status", "event_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[ParticipantStatus] = mapped_column(
        _enum(ParticipantStatus, "participant_status"), default=ParticipantStatus.INVITED
    )
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("event_sessions.id", ondelete="SET NULL"), nullable=True
    )
    dietary: Mapped[str | None] = mapped_column(Text, nullable=True)
    companion_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="SET NULL"), nullable=True
    )
    waitlist_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    session_asked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    tentative_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = _ts()
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)

    event: Mapped[Event] = relationship()
    person: Mapped[Person] = relationship()
    invitation: Mapped[Invitation | None] = relationship()
    session: Mapped[EventSession | None] = relationship()
    companion_of: Mapped[Participant | None] = relationship(remote_side=[id])


class InboundMessage(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_inbound_messages_mailbox_uid"),
        Index("ix_inbound_messages_status", "status"),
        # An event's mail is `event_id = ? OR invitation_id IN (its invitations)` (the purge,
        # forget, the organiser's views); either side without an index scans the whole table.
        Index("ix_inbound_messages_event_id", "event_id"),
        Index("ix_inbound_messages_invitation_id", "invitation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Synthesised from a hash of the bytes when the message has none, so it is always unique.
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    mailbox: Mapped[str] = mapped_column(String(300), default="INBOX")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    uid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # None once purged
    raw_size: Mapped[int] = mapped_column(Integer, default=0)
    from_address: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    received_at: Mapped[datetime] = _ts()
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), nullable=True
    )
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    classification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[InboundStatus] = mapped_column(
        _enum(InboundStatus, "inbound_status"), default=InboundStatus.RECEIVED
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    server_folder: Mapped[str | None] = mapped_column(String(300), nullable=True)
    moved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)


class OutboundMessage(Base):
    """The outbox. A row is written in the same transaction as the change that causes it."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_outbound_messages_due", "status", "next_attempt_at"),
        # An event's outbox (the purge, the organiser's lists, newest first by id). event_id
        # alone: it never changes, so the sender's status updates leave this index alone on
        # SQLite, and the few rows of one status are found through ix_outbound_messages_due.
        Index("ix_outbound_messages_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), nullable=True
    )
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), nullable=True
    )
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    # Essential mail (confirmations, offers, answers) still goes to unsubscribed people;
    # non-essential mail (reminders, follow-ups, nudges) does not.
    essential: Mapped[bool] = mapped_column(Boolean, default=True)
    in_reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[OutboundStatus] = mapped_column(
        _enum(OutboundStatus, "outbound_status"), default=OutboundStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=now)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = _ts()
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Set when the purge dropped the bytes of sent mail: a copy may still sit in the Sent
    # folder. Cleared by housekeeping once the server confirmed it is gone, so a deletion
    # that failed (server down) is retried on every run until it succeeds.
    sent_copy_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The rendered message lives in a table of its own: every claim and result updates this
    # row, and with ~17 KB of bytes inline each of those updates rewrote the whole message.
    body: Mapped[OutboundBody | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @hybrid_property
    def raw(self) -> bytes | None:
        """The rendered message (None once purged); loads the body row on first use."""
        body = self.body
        return body.raw if body is not None else None

    @raw.inplace.setter
    def _raw_setter(self, value: bytes | None) -> None:
        if value is None:
            # Purging drops the row: the bytes are gone, not just blanked.
            self.body = None
        elif self.body is None:
            self.body = OutboundBody(raw=value)
        else:
            self.body.raw = value

    @raw.inplace.expression
    @classmethod
    def _raw_expression(cls) -> ColumnElement[bytes | None]:
        # For filters such as `OutboundMessage.raw.is_not(None)`; prefer a join on
        # OutboundBody when reading many rows' bytes.
        return (
            select(OutboundBody.raw)
            .where(OutboundBody.outbound_id == cls.id)
            .correlate_except(OutboundBody)
            .scalar_subquery()
        )


class OutboundBody(Base):
    """The bytes of one rendered outbound message (see OutboundMessage.body)."""

    __tablename__ = "outbound_bodies"

    outbound_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_messages.id", ondelete="CASCADE"), primary_key=True
    )
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_machine_entity", "machine", "entity_id"),
        # The purge's daily "anything new about this event since?" (`at >= ?`) and the
        # organiser's audit trail (newest first) read one event's entries by time.
        Index("ix_audit_entries_event_at", "event_id", "at"),
        # What a message caused (inbox show, forget, the purge). Partial: most entries are
        # the outbox's and name no message, so they cost this index nothing.
        Index(
            "ix_audit_entries_inbound_message_id",
            "inbound_message_id",
            sqlite_where=text("inbound_message_id IS NOT NULL"),
            postgresql_where=text("inbound_message_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = _ts()
    actor: Mapped[str] = mapped_column(String(200), default="system")
    machine: Mapped[str] = mapped_column(String(40))  # participant, invitation, inbound, outbound
    entity_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), nullable=True
    )
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), nullable=True
    )
    old_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    new_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    inbound_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL"), nullable=True
    )


class MailboxState(Base):
    """Where incremental IMAP reading left off, per folder (UIDVALIDITY + highest UID seen)."""

    __tablename__ = "mailbox_states"

    mailbox: Mapped[str] = mapped_column(String(300), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class RateLimitBucket(Base):
    """A token bucket shared by all workers, so a provider's limit holds across processes."""

    __tablename__ = "rate_limit_buckets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


class Unsubscription(Base):
    __tablename__ = "unsubscriptions"
    __table_args__ = (
        UniqueConstraint("person_id", "organiser", name="uq_unsubscriptions_person_organiser"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    organiser: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(40), default="reply")
    inbound_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = _ts()


class AutoAnswerCount(Base):
    """Automatic answers sent per sender per day: the brake on mail loops."""

    __tablename__ = "auto_answer_counts"

    sender: Mapped[str] = mapped_column(String(320), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    reported: Mapped[bool] = mapped_column(Boolean, default=False)


class ServiceLock(Base):
    """A lease-based lock row (used on SQLite, where there are no advisory locks)."""

    __tablename__ = "service_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime]
