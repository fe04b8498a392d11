"""The event timeline: reminders, nudges, follow-ups and the deadline notice, each exactly once.

The example event starts Wed 1 Feb 2023 13:00 Amsterdam time, registration closes 25 Jan
23:59, reminders 7 and 1 days before at 09:00, nudges 5 days before the deadline, follow-up
1 day after at 10:00. Participant states are built with `transition()`, so the audit trail the
reminder rule reads is the real one; the clock is frozen and moved with time-machine.
"""

from __future__ import annotations

import email
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    Event,
    InvitationStatus,
    OutboundMessage,
    Participant,
    ParticipantStatus,
    Person,
    Unsubscription,
)
from tests.factories import invite, make_event, make_person
from workflows.clock import now
from workflows.invitees import add_invitation
from workflows.outbox import MailKind
from workflows.timeline import (
    TIMELINE_HORIZON,
    close_registration,
    due_events,
    next_timeline_moment,
    queue_due_reminders,
    queue_followups,
    queue_unanswered_nudges,
    schedule,
)
from workflows.transitions import transition

AMS = ZoneInfo("Europe/Amsterdam")
P = ParticipantStatus


def local(text: str) -> datetime:
    """'2023-01-25 09:00' as an aware Amsterdam time."""
    return datetime.fromisoformat(text).replace(tzinfo=AMS)


class Clock:
    """The frozen clock of one test; `set` jumps to a local Amsterdam time."""

    def __init__(self, traveller: time_machine.Traveller) -> None:
        self._traveller = traveller

    def set(self, text: str) -> None:
        self._traveller.move_to(local(text), tick=False)


@pytest.fixture
def clock() -> Iterator[Clock]:
    travel = time_machine.travel(local("2023-01-02 12:00"), tick=False)
    try:
        yield Clock(travel.start())
    finally:
        travel.stop()


# --- building participant states through the real transitions ----------------------------


def invited(db: Session, event: Event, email_address: str) -> Participant:
    """An invitee whose invitation went out now."""
    invitation, participant = invite(db, event, email_address)
    transition(db, invitation, InvitationStatus.QUEUED, reason="test: queued")
    transition(db, invitation, InvitationStatus.SENT, reason="test: sent")
    invitation.sent_at = now()
    db.flush()
    return participant


def registered(db: Session, event: Event, email_address: str) -> Participant:
    participant = invited(db, event, email_address)
    transition(db, participant, P.REGISTERED, reason="test: said yes")
    db.flush()
    return participant


def moved(db: Session, participant: Participant, *path: ParticipantStatus) -> Participant:
    for status in path:
        if status is P.WAITLISTED:
            participant.waitlist_seq = participant.id
        transition(db, participant, status, reason=f"test: {status}")
    db.flush()
    return participant


def companion(
    db: Session, of: Participant, email_address: str, *, register: bool = True
) -> Participant:
    """A colleague named by `of`, built the way registration does: their own invitation
    (already sent, so they have a token) and participant row, registered with the party."""
    person = make_person(db, email_address)
    event = db.get_one(Event, of.event_id)
    _, participant = add_invitation(
        db, event, person, batch="companion", reason="test: named", status=InvitationStatus.SENT
    )
    participant.companion_of_id = of.id
    if register:
        transition(db, participant, P.REGISTERED, reason="test: party registered")
    db.flush()
    return participant


def unsubscribe(db: Session, participant: Participant, organiser: str) -> None:
    db.add(Unsubscription(person_id=participant.person_id, organiser=organiser))
    db.flush()


def outbox(db: Session, prefix: str = "") -> list[OutboundMessage]:
    return list(
        db.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.idempotency_key.startswith(prefix))
            .order_by(OutboundMessage.idempotency_key)
        )
    )


def recipients(db: Session, prefix: str) -> list[str]:
    return sorted(row.recipient for row in outbox(db, prefix))


def email_of(db: Session, participant: Participant) -> str:
    return db.get_one(Person, participant.person_id).email


def body_of(row: OutboundMessage) -> str:
    assert row.raw is not None
    message = email.message_from_bytes(row.raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def moved_event(db: Session, start: str, deadline: str) -> Event:
    """Re-load the example event with a new date, as `rsvpmail event load` does."""
    starts_at = local(start)
    return make_event(
        db,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=4, minutes=30),
        registration_deadline=local(deadline),
    )


# --- the schedule --------------------------------------------------------------------------


def test_schedule_is_computed_from_the_event_config(db: Session) -> None:
    sched = schedule(make_event(db))
    assert [(days, due.astimezone(AMS)) for days, due in sched.reminders] == [
        (7, local("2023-01-25 09:00")),
        (1, local("2023-01-31 09:00")),
    ]
    assert sched.nudge_at == local("2023-01-20 09:00")
    assert sched.deadline == local("2023-01-25 23:59")
    assert sched.followup_at == local("2023-02-02 10:00")


def test_followup_never_before_the_event_is_over(db: Session) -> None:
    from datetime import time

    event = make_event(db, followup_days_after=0, followup_local_time=time(10, 0))
    assert schedule(event).followup_at == event.ends_at


# --- reminders -----------------------------------------------------------------------------


def test_each_registered_person_gets_the_due_reminder_once(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    ann = registered(db, event, "ann@gemeente.example")
    bob = registered(db, event, "bob@gemeente.example")
    invited(db, event, "silent@gemeente.example")
    moved(db, registered(db, event, "gone@gemeente.example"), P.CANCELLED)
    db.commit()

    clock.set("2023-01-25 08:59")
    assert queue_due_reminders(db, event) == 0

    clock.set("2023-01-25 09:00")
    assert queue_due_reminders(db, event) == 2
    assert queue_due_reminders(db, event) == 0
    db.commit()
    with sessions() as other:
        assert queue_due_reminders(other, other.get_one(Event, event.id)) == 0

    rows = outbox(db, "reminder:")
    assert [r.idempotency_key for r in rows] == [
        f"reminder:{event.id}:7:{ann.id}",
        f"reminder:{event.id}:7:{bob.id}",
    ]
    assert {r.kind for r in rows} == {MailKind.REMINDER.value}
    assert not any(r.essential for r in rows)
    assert sorted(r.recipient for r in rows) == ["ann@gemeente.example", "bob@gemeente.example"]


def test_two_instances_at_once_queue_each_reminder_once(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    for n in range(8):
        registered(db, event, f"p{n}@gemeente.example")
    db.commit()
    clock.set("2023-01-31 10:00")

    start = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def instance() -> None:
        try:
            with sessions() as session:
                start.wait()
                with session.begin():
                    counts.append(queue_due_reminders(session, session.get_one(Event, event.id)))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(counts) == 2 and sum(counts) == 8
    assert len(outbox(db, "reminder:")) == 8


def test_who_registers_after_a_reminder_is_due_does_not_get_that_one(
    db: Session, clock: Clock
) -> None:
    event = make_event(db)
    clock.set("2023-01-20 12:00")
    early = registered(db, event, "early@gemeente.example")
    clock.set("2023-01-25 09:00")
    # Registered at the very due moment: registered at the time the reminder is due.
    on_time = registered(db, event, "ontime@gemeente.example")
    clock.set("2023-01-26 10:00")
    late = registered(db, event, "late@gemeente.example")
    db.commit()

    # The service runs after `late` registered, but the 7-day reminder was due before that.
    assert queue_due_reminders(db, event) == 2
    assert recipients(db, f"reminder:{event.id}:7:") == [
        "early@gemeente.example",
        "ontime@gemeente.example",
    ]

    clock.set("2023-01-31 09:00")
    assert queue_due_reminders(db, event) == 3
    assert recipients(db, f"reminder:{event.id}:1:") == sorted(
        email_of(db, p) for p in (early, on_time, late)
    )


def test_reregistration_counts_from_the_latest_registration(db: Session, clock: Clock) -> None:
    event = make_event(db)
    clock.set("2023-01-20 12:00")
    wavering = registered(db, event, "wavering@gemeente.example")
    moved(db, wavering, P.CANCELLED)
    clock.set("2023-01-26 12:00")
    moved(db, wavering, P.REGISTERED)
    db.commit()

    assert queue_due_reminders(db, event) == 0  # not registered when the 7-day one was due


def test_catch_up_after_downtime_sends_only_the_latest_due_reminder_once(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    people = [registered(db, event, f"p{n}@gemeente.example") for n in range(3)]
    db.commit()

    # Down from before the 7-day moment until after the 1-day moment.
    clock.set("2023-01-31 15:00")
    assert queue_due_reminders(db, event) == 3
    db.commit()
    with sessions() as other:
        assert queue_due_reminders(other, other.get_one(Event, event.id)) == 0
    assert [r.idempotency_key for r in outbox(db, "reminder:")] == sorted(
        f"reminder:{event.id}:1:{p.id}" for p in people
    )


def test_no_reminder_once_the_event_has_started(db: Session, clock: Clock) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    registered(db, event, "ann@gemeente.example")
    db.commit()

    clock.set("2023-02-01 13:00")
    assert queue_due_reminders(db, event) == 0
    assert outbox(db, "reminder:") == []


def test_moving_the_event_moves_the_schedule_and_does_not_resend(db: Session, clock: Clock) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    ann = registered(db, event, "ann@gemeente.example")
    db.commit()

    clock.set("2023-01-24 10:00")
    assert queue_due_reminders(db, event) == 0  # the 7-day moment is tomorrow

    # Brought forward a day: the 7-day moment (24 Jan 09:00) has now passed.
    moved_event(db, start="2023-01-31 13:00", deadline="2023-01-24 23:59")
    assert queue_due_reminders(db, event) == 1
    assert [r.idempotency_key for r in outbox(db, "reminder:")] == [
        f"reminder:{event.id}:7:{ann.id}"
    ]

    # Back to 1 February: its 7-day moment comes, but that reminder went out already.
    moved_event(db, start="2023-02-01 13:00", deadline="2023-01-25 23:59")
    clock.set("2023-01-25 09:30")
    assert queue_due_reminders(db, event) == 0

    clock.set("2023-01-31 09:00")
    assert queue_due_reminders(db, event) == 1
    assert len(outbox(db, "reminder:")) == 2


def test_companions_with_their_own_address_are_reminded(db: Session, clock: Clock) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    host = registered(db, event, "ann@gemeente.example")
    companion(db, host, "karin.smit@gemeente.example")
    companion(db, host, "companion-2@rsvpmail.invalid")  # came without an address
    db.commit()

    clock.set("2023-01-31 09:00")
    assert queue_due_reminders(db, event) == 2
    assert recipients(db, "reminder:") == ["ann@gemeente.example", "karin.smit@gemeente.example"]


def test_unsubscribed_people_get_no_reminder_nudge_or_followup(db: Session, clock: Clock) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    coming = registered(db, event, "coming@gemeente.example")
    silent = invited(db, event, "silent@gemeente.example")
    other_organiser = registered(db, event, "other@gemeente.example")
    for participant in (coming, silent):
        unsubscribe(db, participant, event.organiser)
    unsubscribe(db, other_organiser, "Een andere organisator")
    db.commit()

    for moment in ("2023-01-20 09:00", "2023-01-31 09:00", "2023-02-02 10:00"):
        clock.set(moment)
        queue_unanswered_nudges(db, event)
        queue_due_reminders(db, event)
        queue_followups(db, event)

    assert {r.recipient for r in outbox(db)} == {"other@gemeente.example"}
    assert len(outbox(db, "reminder:")) == 1
    assert len(outbox(db, "followup:")) == 1


# --- nudges --------------------------------------------------------------------------------


def test_nudges_go_once_to_unanswered_invitees_before_the_deadline(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    silent = invited(db, event, "silent@gemeente.example")
    # Named by an invitee, answered for by them: never asked on their own.
    companion(db, silent, "colleague@gemeente.example", register=False)
    registered(db, event, "yes@gemeente.example")
    moved(db, invited(db, event, "no@gemeente.example"), P.DECLINED)
    moved(db, invited(db, event, "queue@gemeente.example"), P.WAITLISTED)
    invite(db, event, "never-sent@gemeente.example")  # still pending in the outbox
    db.commit()

    clock.set("2023-01-20 08:59")
    assert queue_unanswered_nudges(db, event) == 0

    clock.set("2023-01-21 12:00")
    invited(db, event, "late-batch@gemeente.example")  # invited after the nudge moment
    db.commit()
    assert queue_unanswered_nudges(db, event) == 1
    assert queue_unanswered_nudges(db, event) == 0
    db.commit()
    with sessions() as other:
        assert queue_unanswered_nudges(other, other.get_one(Event, event.id)) == 0

    rows = outbox(db, "nudge:")
    assert [(r.idempotency_key, r.kind, r.recipient) for r in rows] == [
        (f"nudge:{event.id}:{silent.id}", MailKind.NUDGE_UNANSWERED.value, email_of(db, silent))
    ]


def test_no_nudge_after_the_deadline(db: Session, clock: Clock) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    invited(db, event, "silent@gemeente.example")
    db.commit()

    clock.set("2023-01-26 00:00")  # the service was down over the whole nudge window
    assert queue_unanswered_nudges(db, event) == 0


def test_no_nudges_when_not_configured(db: Session, clock: Clock) -> None:
    event = make_event(db, nudge_days_before_deadline=None)
    clock.set("2023-01-10 12:00")
    invited(db, event, "silent@gemeente.example")
    db.commit()

    clock.set("2023-01-24 12:00")
    assert schedule(event).nudge_at is None
    assert queue_unanswered_nudges(db, event) == 0


# --- follow-ups ----------------------------------------------------------------------------


def test_followups_by_status_once_each(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    came = moved(db, registered(db, event, "came@gemeente.example"), P.ATTENDED)
    unrecorded = registered(db, event, "unrecorded@gemeente.example")
    absent = moved(db, registered(db, event, "absent@gemeente.example"), P.NO_SHOW)
    declined = moved(db, invited(db, event, "declined@gemeente.example"), P.DECLINED)
    cancelled = moved(db, registered(db, event, "cancelled@gemeente.example"), P.CANCELLED)
    invited(db, event, "silent@gemeente.example")
    queued = moved(db, invited(db, event, "queue@gemeente.example"), P.WAITLISTED)
    db.commit()

    clock.set("2023-02-02 09:59")
    assert queue_followups(db, event) == 0

    clock.set("2023-02-02 10:00")
    assert queue_followups(db, event) == 6
    assert queue_followups(db, event) == 0
    db.commit()
    with sessions() as other:
        assert queue_followups(other, other.get_one(Event, event.id)) == 0

    kinds = {r.idempotency_key: r.kind for r in outbox(db, "followup:")}
    attended, absent_kind = MailKind.FOLLOWUP_ATTENDED.value, MailKind.FOLLOWUP_ABSENT.value
    assert kinds == {
        f"followup:{event.id}:{came.id}": attended,
        f"followup:{event.id}:{unrecorded.id}": attended,
        f"followup:{event.id}:{absent.id}": absent_kind,
        f"followup:{event.id}:{declined.id}": absent_kind,
        f"followup:{event.id}:{cancelled.id}": absent_kind,
        # Still waiting when the event took place: they could not come either.
        f"followup:{event.id}:{queued.id}": absent_kind,
    }


def test_attendance_recorded_late_does_not_send_a_second_followup(
    db: Session, clock: Clock
) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    unrecorded = registered(db, event, "unrecorded@gemeente.example")
    db.commit()

    clock.set("2023-02-02 10:00")
    assert queue_followups(db, event) == 1
    clock.set("2023-02-03 10:00")
    moved(db, unrecorded, P.NO_SHOW)
    assert queue_followups(db, event) == 0


# --- the registration deadline -------------------------------------------------------------


def test_deadline_notice_once_with_the_counts(
    db: Session, sessions: sessionmaker[Session], clock: Clock
) -> None:
    event = make_event(db)
    clock.set("2023-01-10 12:00")
    host = registered(db, event, "ann@gemeente.example")
    companion(db, host, "karin.smit@gemeente.example")
    registered(db, event, "bob@gemeente.example")
    moved(db, invited(db, event, "queue@gemeente.example"), P.WAITLISTED)
    moved(db, invited(db, event, "no@gemeente.example"), P.DECLINED)
    invited(db, event, "silent@gemeente.example")
    db.commit()

    clock.set("2023-01-25 23:58")
    assert close_registration(db, event) is False

    clock.set("2023-01-25 23:59")
    assert close_registration(db, event) is True
    assert close_registration(db, event) is False
    db.commit()
    with sessions() as other:
        assert close_registration(other, other.get_one(Event, event.id)) is False

    [notice] = outbox(db, "deadline:")
    assert notice.idempotency_key == f"deadline:{event.id}"
    assert notice.kind == MailKind.ORGANISER_NOTICE.value
    assert notice.recipient == event.contact_email
    body = body_of(notice)
    for line in (
        "Aangemeld: 3 (onder wie 1 meegebrachte collega)",
        "Wachtlijst: 1",
        "Geen antwoord: 1",
        f"vrije plaatsen: {event.capacity - 3}",
    ):
        assert line in body


def test_no_deadline_notice_for_an_event_that_is_over(db: Session, clock: Clock) -> None:
    event = make_event(db)
    clock.set("2023-02-01 17:30")
    assert close_registration(db, event) is False


# --- what the scheduler asks -----------------------------------------------------------------


def test_due_events_leaves_out_events_long_over(db: Session, clock: Clock) -> None:
    current = make_event(db)
    old_start = local("2022-12-01 13:00")
    old = make_event(
        db,
        slug="lang-geleden",
        starts_at=old_start,
        ends_at=old_start + timedelta(hours=4),
        registration_deadline=old_start - timedelta(days=7),
    )
    clock.set("2023-01-10 12:00")
    assert [e.id for e in due_events(db)] == [old.id, current.id]

    db.commit()
    with time_machine.travel(old.ends_at + TIMELINE_HORIZON + timedelta(seconds=1), tick=False):
        assert [e.id for e in due_events(db)] == [current.id]


def test_next_timeline_moment_walks_the_schedule(db: Session, clock: Clock) -> None:
    make_event(db)
    db.commit()
    walk = []
    clock.set("2023-01-10 12:00")
    while (moment := next_timeline_moment(db)) is not None:
        walk.append(moment.astimezone(AMS))
        clock.set(moment.astimezone(AMS).strftime("%Y-%m-%d %H:%M:%S"))
        assert len(walk) <= 10, walk  # each moment is strictly after the one before
    assert walk == [
        local("2023-01-20 09:00"),  # nudge
        local("2023-01-25 09:00"),  # 7-day reminder
        local("2023-01-25 23:59"),  # deadline
        local("2023-01-31 09:00"),  # 1-day reminder
        local("2023-02-02 10:00"),  # follow-up
    ]
