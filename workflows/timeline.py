"""The event's timeline: reminders, nudges to the unanswered, the deadline notice, follow-ups.

Everything here is a pure rule over a DB session and the clock. Each function works out from
the event *as it is now* what is due, and queues the mail that is due and not queued before.
The outbox's unique idempotency keys are the only memory: the scheduler keeps no state, so a
restart, a missed tick or a second instance running the same tick catches up exactly once.
Moving the event (re-loading its config with a new date) moves the schedule with it, and
mail already queued under a key is never queued again.

Idempotency keys (one mail per key, ever):
- ``reminder:<event>:<days_before>:<participant>``
- ``nudge:<event>:<participant>``
- ``followup:<event>:<participant>``
- ``deadline:<event>``

The caller commits; one call is one unit of work.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from db.models import (
    AuditEntry,
    Event,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    Participant,
    ParticipantStatus,
    Person,
    Unsubscription,
)
from workflows.clock import now
from workflows.event_config import EventConfig, reminder_due_times
from workflows.events import event_config
from workflows.outbox import MailKind, queue_mail

# How long after an event ends the timeline still looks at it (follow-ups that were due while
# the service was down, expiring offers). Older events are history.
TIMELINE_HORIZON = timedelta(days=60)

# RFC 2606 reserves `.invalid`: a companion named without an address of their own is stored
# with such a placeholder (workflows.registration.PLACEHOLDER_DOMAIN, has_mailbox) and must
# never be mailed. The same test, as SQL, so such people are not even loaded.
_PLACEHOLDER_TLD = ".invalid"

P = ParticipantStatus

# Who gets which follow-up. `registered` after the event means attendance was never recorded;
# see queue_followups for why they are thanked as attendees.
FOLLOWUP_KINDS: dict[ParticipantStatus, MailKind] = {
    P.ATTENDED: MailKind.FOLLOWUP_ATTENDED,
    P.REGISTERED: MailKind.FOLLOWUP_ATTENDED,
    P.NO_SHOW: MailKind.FOLLOWUP_ABSENT,
    P.DECLINED: MailKind.FOLLOWUP_ABSENT,
    P.CANCELLED: MailKind.FOLLOWUP_ABSENT,
    # No seat came free for them: they could not come either, and want the materials.
    P.WAITLISTED: MailKind.FOLLOWUP_ABSENT,
    P.EXPIRED: MailKind.FOLLOWUP_ABSENT,
}


@dataclass(frozen=True)
class Schedule:
    """The moments of one event's timeline, aware UTC, computed from the event as it is now."""

    reminders: tuple[tuple[int, datetime], ...]  # (days_before, due), earliest first
    nudge_at: datetime | None  # None when nudges are not configured
    deadline: datetime
    followup_at: datetime
    starts_at: datetime
    ends_at: datetime

    def moments(self) -> list[datetime]:
        """Every moment at which some work becomes due, in time order. A reminder due once
        the event has started, or a nudge due after the deadline, does nothing and is left out.
        """
        found = [due for _, due in self.reminders if due < self.starts_at]
        found += [self.deadline, self.followup_at]
        if self.nudge_at is not None and self.nudge_at < self.deadline:
            found.append(self.nudge_at)
        return sorted(found)


def schedule(event: Event, cfg: EventConfig | None = None) -> Schedule:
    """The event's timeline. The event's columns are the truth for its dates (they are what
    `event load` and the CLI change); the config supplies offsets and local times of day."""
    cfg = cfg or event_config(event)
    tz = ZoneInfo(event.timezone)
    starts_at = event.starts_at
    ends_at = event.ends_at
    deadline = event.registration_deadline
    located = dataclasses.replace(cfg, starts_at=starts_at.astimezone(tz), timezone=event.timezone)
    reminders = sorted(
        {(days, _utc(due)) for days, due in reminder_due_times(located)},
        key=lambda pair: pair[1],
    )
    nudge_at = None
    if cfg.nudge_days_before_deadline is not None:
        nudge_day = deadline.astimezone(tz) - timedelta(days=cfg.nudge_days_before_deadline)
        nudge_at = _local_moment(nudge_day, cfg.reminder_local_time, tz)
    followup_day = ends_at.astimezone(tz) + timedelta(days=cfg.followup_days_after)
    # Never before the event is over, even with `days_after = 0` and an early local time.
    followup_at = max(_local_moment(followup_day, cfg.followup_local_time, tz), ends_at)
    return Schedule(
        reminders=tuple(reminders),
        nudge_at=nudge_at,
        deadline=deadline,
        followup_at=followup_at,
        starts_at=starts_at,
        ends_at=ends_at,
    )


def _local_moment(day: datetime, at: time, tz: ZoneInfo) -> datetime:
    return _utc(datetime.combine(day.date(), at, tzinfo=tz))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# --- reminders ---------------------------------------------------------------------------


def latest_due_reminder(sched: Schedule, at: datetime) -> tuple[int, datetime] | None:
    """The reminder to send at `at`: the latest one whose due time has passed, while the
    event has not started.

    Only the latest: after downtime that spans both the 7-day and the 1-day moment, sending
    both at once would be noise, and the 1-day reminder says everything the 7-day one does.
    So an earlier reminder that was missed is skipped for good once a later one is due.
    """
    if at >= sched.starts_at:
        return None
    due = [(days, moment) for days, moment in sched.reminders if moment <= at]
    return due[-1] if due else None


def queue_due_reminders(db: Session, event: Event) -> int:
    """Queue the due reminder (extra `days_before`) to everyone registered at its due time.

    Registered means status `registered` now *and* registered no later than the due time,
    taken from the audit trail: the latest audited move into `registered` (a person who
    cancelled and registered again counts from the second time). Someone who registers after
    a reminder's due time already got everything in their confirmation and does not get it;
    they do get the next reminder. Invitees and companions alike, if they have a real
    address and have not unsubscribed from the organiser. Returns the number queued.
    """
    cfg = event_config(event)
    due = latest_due_reminder(schedule(event, cfg), now())
    if due is None:
        return 0
    days_before, due_at = due
    registered_at = (
        select(func.max(AuditEntry.at))
        .where(
            AuditEntry.machine == "participant",
            AuditEntry.entity_id == Participant.id,
            AuditEntry.new_status == P.REGISTERED.value,
        )
        .correlate(Participant)
        .scalar_subquery()
    )
    rows = db.execute(
        _mailable(event, P.REGISTERED).add_columns(registered_at).order_by(Participant.id)
    ).all()
    # No audit row at all would be a bug elsewhere; the row's creation time is the best
    # remaining evidence of when the person joined.
    registered_in_time = [
        (participant, person)
        for participant, person, since in rows
        if (since or participant.created_at) <= due_at
    ]
    return _queue_once_each(
        db,
        event,
        f"reminder:{event.id}:{days_before}:",
        registered_in_time,
        lambda _participant: (MailKind.REMINDER, {"days_before": days_before}),
    )


# --- nudges ------------------------------------------------------------------------------


def queue_unanswered_nudges(db: Session, event: Event) -> int:
    """Nudge invitees who have not answered, once, between the nudge moment and the deadline.

    The nudge moment is `nudge_unanswered_days_before_deadline` days before the registration
    deadline at the reminders' local time. Only invitees whose invitation went out before that
    moment: someone invited in a late batch just got the invitation and needs no nudge yet.
    Not configured: nothing. Returns the number queued.
    """
    cfg = event_config(event)
    sched = schedule(event, cfg)
    moment = now()
    if sched.nudge_at is None or not sched.nudge_at <= moment < sched.deadline:
        return 0
    rows = db.execute(
        _mailable(event, P.INVITED)
        .join(Invitation, Invitation.id == Participant.invitation_id)
        .where(
            # Companions follow their inviter's answer; only the invitee is asked.
            Participant.companion_of_id.is_(None),
            Invitation.status == InvitationStatus.SENT,
            Invitation.sent_at.is_not(None),
            Invitation.sent_at <= sched.nudge_at,
        )
        .order_by(Participant.id)
    ).all()
    return _queue_once_each(
        db,
        event,
        f"nudge:{event.id}:",
        [(participant, person) for participant, person in rows],
        lambda _participant: (MailKind.NUDGE_UNANSWERED, {}),
    )


# --- follow-ups --------------------------------------------------------------------------


def queue_followups(db: Session, event: Event) -> int:
    """After the event, once per person: `followup_attended` (thanks, materials, survey) to
    those who attended, `followup_absent` (materials) to no-shows, decliners and cancellers.

    Due `followup_days_after` days after the event at `followup_local_time`. Participants still
    `registered` then mean the organiser never ran `rsvpmail attendance`; they get
    `followup_attended`, because most registered people come and wrongly thanking an absentee
    costs less than sending every attendee a "sorry we missed you". Recording attendance
    before the follow-up moment is what makes the split exact. Extra `status` tells the
    template which case it is. People who never answered or stayed on the waitlist get none.
    Returns the number queued.
    """
    cfg = event_config(event)
    sched = schedule(event, cfg)
    if now() < sched.followup_at:
        return 0
    rows = db.execute(_mailable(event, *FOLLOWUP_KINDS).order_by(Participant.id)).all()
    return _queue_once_each(
        db,
        event,
        f"followup:{event.id}:",
        [(participant, person) for participant, person in rows],
        lambda participant: (
            FOLLOWUP_KINDS[participant.status],
            {"status": participant.status.value},
        ),
    )


# --- registration deadline -----------------------------------------------------------------


def close_registration(db: Session, event: Event) -> bool:
    """At the registration deadline, once: a summary to the contact person (organiser_notice).

    Nothing changes state: the deadline itself is what the registration rules check. The
    notice is only worth sending while the event is still ahead or running; an event loaded
    after it ended gets none. A deadline moved later after the notice went out does not
    produce a second one (the key is per event). Returns whether a notice was queued now.
    """
    moment = now()
    if not event.registration_deadline <= moment < event.ends_at:
        return False
    key = f"deadline:{event.id}"
    if db.scalar(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == key)):
        return False  # checked before counting, so a tick after the first costs one query
    counts = _status_counts(db, event)
    row = queue_mail(
        db,
        key=key,
        kind=MailKind.ORGANISER_NOTICE,
        event=event,
        person=None,
        recipient=event.contact_email,
        extra=deadline_summary(event, counts),
    )
    return row is not None


@dataclass(frozen=True)
class StatusCounts:
    by_status: Counter[ParticipantStatus]
    companions_registered: int

    def __getitem__(self, status: ParticipantStatus) -> int:
        return self.by_status[status]


def _status_counts(db: Session, event: Event) -> StatusCounts:
    rows = db.execute(
        select(Participant.status, Participant.companion_of_id.is_not(None), func.count())
        .where(Participant.event_id == event.id)
        .group_by(Participant.status, Participant.companion_of_id.is_not(None))
    ).all()
    by_status: Counter[ParticipantStatus] = Counter()
    companions = 0
    for status, is_companion, count in rows:
        by_status[ParticipantStatus(status)] += count
        if is_companion and status == P.REGISTERED:
            companions += count
    return StatusCounts(by_status, companions)


def deadline_summary(event: Event, counts: StatusCounts) -> dict[str, object]:
    """The facts of the deadline notice (`extra` of organiser_notice "registration_closed");
    the template writes subject and lines in the event's language, with the event's title
    and its deadline formatted like every other date."""
    seats_taken = counts[P.REGISTERED] + counts[P.OFFERED]
    return {
        "notice": "registration_closed",
        "registered": counts[P.REGISTERED],
        "companions": counts.companions_registered,
        "waitlisted": counts[P.WAITLISTED],
        "offered": counts[P.OFFERED],
        "declined": counts[P.DECLINED],
        "cancelled": counts[P.CANCELLED],
        "expired": counts[P.EXPIRED],
        "no_answer": counts[P.INVITED],
        "capacity": event.capacity,
        "seats_free": max(event.capacity - seats_taken, 0),
    }


# --- what the scheduler asks -----------------------------------------------------------------


def due_events(db: Session) -> list[Event]:
    """Events whose timeline may still have work: all except those that ended more than
    TIMELINE_HORIZON ago. Cheap to over-include: every step checks its own moment."""
    cutoff = now() - TIMELINE_HORIZON
    return list(db.scalars(select(Event).where(Event.ends_at >= cutoff).order_by(Event.starts_at)))


def next_timeline_moment(db: Session) -> datetime | None:
    """The earliest moment after now at which timeline work becomes due, across events; None
    when nothing is ahead. The scheduler sleeps until then (its regular tick still runs, so a
    moment brought forward by an event change is never missed for long)."""
    moment = now()
    upcoming = [m for event in due_events(db) for m in schedule(event).moments() if m > moment]
    return min(upcoming, default=None)


# --- shared --------------------------------------------------------------------------------


def _mailable(event: Event, *statuses: ParticipantStatus) -> Select[Participant, Person]:
    """Participants of `event` in `statuses` who may get non-essential mail: a real address,
    not anonymised, not unsubscribed from this organiser."""
    unsubscribed = exists().where(
        Unsubscription.person_id == Person.id,
        Unsubscription.organiser == event.organiser,
    )
    return (
        select(Participant, Person)
        .join(Person, Person.id == Participant.person_id)
        .where(
            Participant.event_id == event.id,
            Participant.status.in_(statuses),
            Person.anonymised_at.is_(None),
            Person.email.contains("@"),
            ~Person.email.endswith(_PLACEHOLDER_TLD),
            ~unsubscribed,
        )
    )


def _queued_keys(db: Session, prefix: str) -> set[str]:
    """Keys already in the outbox starting with `prefix`, so mail that went out is not even
    rendered again; queue_mail re-checks under the unique constraint for concurrent runs."""
    # LIKE with the prefix escaped: keys contain only digits, letters and ':'.
    return set(
        db.scalars(
            select(OutboundMessage.idempotency_key).where(
                OutboundMessage.idempotency_key.startswith(prefix, autoescape=True)
            )
        )
    )


def _queue_once_each(
    db: Session,
    event: Event,
    prefix: str,
    recipients: Sequence[tuple[Participant, Person]],
    mail: Callable[[Participant], tuple[MailKind, dict[str, object]]],
) -> int:
    """Queue `mail(participant)` to each recipient under the key `prefix<participant id>`,
    skipping those whose key is in the outbox already; returns the number queued."""
    done = _queued_keys(db, prefix)
    queued = 0
    for participant, person in recipients:
        key = f"{prefix}{participant.id}"
        if key in done:
            continue
        kind, extra = mail(participant)
        queued += _queue(
            db,
            key=key,
            kind=kind,
            event=event,
            participant=participant,
            person=person,
            extra=extra,
        )
    return queued


def _queue(
    db: Session,
    *,
    key: str,
    kind: MailKind,
    event: Event,
    participant: Participant,
    person: Person,
    extra: dict[str, object],
) -> int:
    row = queue_mail(
        db,
        key=key,
        kind=kind,
        event=event,
        person=person,
        participant=participant,
        invitation=participant.invitation,
        extra=extra,
    )
    return 0 if row is None else 1


__all__ = [
    "FOLLOWUP_KINDS",
    "TIMELINE_HORIZON",
    "Schedule",
    "close_registration",
    "deadline_summary",
    "due_events",
    "latest_due_reminder",
    "next_timeline_moment",
    "queue_due_reminders",
    "queue_followups",
    "queue_unanswered_nudges",
    "schedule",
]
