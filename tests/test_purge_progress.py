"""The daily purge remembers what it did, and never skips what still needs purging.

An event whose rows were purged is not gone through again while nothing about it changed;
mail that arrives for it later, a late invitation, mail that was being sent during the purge,
or a row stamped just before the purge but committed after it, are all purged the next run.
On SQLite and PostgreSQL, with the privacy tests' scenario (real replies, bounces, outbox).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from db.models import Event, InboundMessage, OutboundMessage, OutboundStatus, Person
from tests.factories import invite
from tests.test_privacy import (
    JAN,
    PERSONAL_DAYS,
    RAW_DAYS,
    Scenario,
    every_stored_text,
    leaks,
    scenario,
)
from workflows.invitations import queue_invitations
from workflows.privacy import IN_FLIGHT_MARGIN, purge_expired
from workflows.transitions import transition

__all__ = ["scenario"]  # a fixture shared with test_privacy

# A late reply that goes to review: it causes no mail, whose body would rightly wait for its
# sending before it can be purged.
LATE_TEXT = "Dank voor de mooie presentatie van de wethouder van Zwijndrecht-Proef."


def purged_at(s: Scenario) -> tuple[object, object]:
    s.db.expire_all()
    event = s.db.get_one(Event, s.event.id)
    return event.raw_purged_at, event.personal_purged_at


def test_an_event_with_nothing_new_is_not_gone_through_again(scenario: Scenario) -> None:
    s, db = scenario, scenario.db
    s.clock.set(s.after_end(RAW_DAYS))
    first = purge_expired(db)
    db.commit()
    assert first.inbound_raw_purged > 0 and first.events_up_to_date == []
    assert purged_at(s) == (s.clock.at, None)

    s.clock.advance(days=1)
    second = purge_expired(db)
    db.commit()
    assert second.events_raw_expired == [s.event.slug]
    assert second.events_up_to_date == [s.event.slug]
    assert second.changed == 0
    assert purged_at(s)[0] == s.clock.at - timedelta(days=1)  # not a pass: not stamped
    assert "already purged, nothing new since: " + s.event.slug in second.lines()

    s.clock.set(s.after_end(PERSONAL_DAYS))
    personal = purge_expired(db)
    db.commit()
    # The personal-data period is a pass of its own, however quiet the event was.
    assert personal.events_personal_expired == [s.event.slug]
    assert personal.persons_anonymised > 0
    assert purged_at(s)[1] == s.clock.at
    dump = sorted(every_stored_text(db))

    s.clock.advance(days=1)
    quiet = purge_expired(db)
    db.commit()
    assert quiet.changed == 0 and quiet.events_up_to_date == [s.event.slug] * 2
    assert sorted(every_stored_text(db)) == dump


def test_mail_that_arrives_after_the_purge_is_purged_the_next_run(scenario: Scenario) -> None:
    s, db = scenario, scenario.db
    s.clock.set(s.after_end(RAW_DAYS))
    purge_expired(db)
    db.commit()

    s.clock.advance(days=2)
    late = s.world.say(s.participants["jan"], LATE_TEXT, from_name=JAN.name)
    assert late.raw is not None and late.event_id == s.event.id
    s.clock.advance(days=1)
    report = purge_expired(db)
    db.commit()

    assert report.events_up_to_date == []
    assert report.inbound_raw_purged == 1
    db.refresh(late)
    assert late.raw is None and late.subject == ""
    assert leaks(db, [LATE_TEXT[:40]]) == []
    assert db.scalar(select(OutboundMessage.id).where(OutboundMessage.raw.is_not(None))) is None


def test_a_row_stamped_just_before_the_purge_but_committed_after_is_seen(
    scenario: Scenario,
) -> None:
    """What a reader transaction that began before the purge and committed after it leaves."""
    s, db = scenario, scenario.db
    purge_moment = s.after_end(RAW_DAYS)
    s.clock.set(purge_moment)
    purge_expired(db)
    db.commit()

    s.clock.set(purge_moment - IN_FLIGHT_MARGIN / 2)
    late = s.world.say(s.participants["jan"], LATE_TEXT, from_name=JAN.name)
    s.clock.set(purge_moment + timedelta(days=1))
    report = purge_expired(db)
    db.commit()

    assert report.inbound_raw_purged == 1
    db.refresh(late)
    assert late.raw is None


def test_a_late_invitation_to_a_purged_event_is_anonymised_the_next_run(
    scenario: Scenario,
) -> None:
    s, db = scenario, scenario.db
    s.clock.set(s.after_end(PERSONAL_DAYS))
    purge_expired(db)
    db.commit()

    s.clock.advance(days=1)
    latecomer = "m.laatkomer@te-laat-gemeente.example"
    invite(db, s.event, latecomer, "Marieke Laatkomer-Verlaat")
    db.commit()
    queue_invitations(db, s.event, actor="organiser")
    db.commit()
    s.clock.advance(days=1)
    report = purge_expired(db)
    db.commit()

    assert report.persons_anonymised == 1
    assert leaks(db, [latecomer, "Marieke Laatkomer-Verlaat"]) == []
    assert db.scalar(select(Person).where(Person.anonymised_at.is_(None))) is None


def test_mail_being_sent_during_the_purge_loses_its_bytes_once_sent(scenario: Scenario) -> None:
    s, db = scenario, scenario.db
    s.clock.set(s.after_end(RAW_DAYS) - timedelta(days=1))
    invite(db, s.event, "k.onderweg@gemeente-onderweg.example", "Karel Onderweg")
    db.commit()
    queue_invitations(db, s.event, actor="organiser")
    db.commit()
    [in_flight] = db.scalars(
        select(OutboundMessage).where(OutboundMessage.status == OutboundStatus.PENDING)
    ).all()
    transition(db, in_flight, OutboundStatus.SENDING, reason="claimed", actor="worker-1")
    db.commit()

    s.clock.set(s.after_end(RAW_DAYS))
    purge_expired(db)
    db.commit()
    db.refresh(in_flight)
    assert in_flight.raw is not None  # raw purge only takes mail that is done

    s.clock.advance(days=3)
    transition(db, in_flight, OutboundStatus.SENT, reason="accepted by the SMTP server")
    db.commit()
    s.clock.advance(days=1)
    report = purge_expired(db)
    db.commit()

    assert report.outbound_raw_purged == 1
    db.refresh(in_flight)
    assert in_flight.raw is None and in_flight.sent_copy_pending
    assert db.scalar(select(InboundMessage.id).where(InboundMessage.raw.is_not(None))) is None
