"""Marking attendance: only after the start, all or nothing, idempotent, audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditEntry, Event, Participant, ParticipantStatus
from tests.factories import invite, make_event
from workflows.attendance import (
    AttendanceError,
    ListedEmail,
    listed_from_options,
    mark_attendance,
    parse_attendance_list,
)
from workflows.transitions import transition

PS = ParticipantStatus
BEFORE = datetime(2023, 1, 20, 9, 0, tzinfo=UTC)
DURING = datetime(2023, 2, 1, 13, 30, tzinfo=UTC)  # 14:30 in Rotterdam: deelsessies
AFTER = datetime(2023, 2, 2, 9, 0, tzinfo=UTC)
ACTOR = "organiser:marieke"

REGISTERED = ["lotte@zwaanshoek.example", "femke@oosterdijk.example", "jan@bergveld.example"]


@pytest.fixture
def traveller() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(BEFORE, tick=False) as t:
        yield t


@pytest.fixture
def event(db: Session, traveller: time_machine.Traveller) -> Event:
    """Three registered, one waitlisted, one who declined."""
    event = make_event(db)
    for email in REGISTERED:
        _, p = invite(db, event, email)
        transition(db, p, PS.REGISTERED, reason="test")
    _, waiting = invite(db, event, "mo@leidenvaart.example")
    waiting.waitlist_seq = 1
    transition(db, waiting, PS.WAITLISTED, reason="test")
    _, declined = invite(db, event, "henk@veenoord.example")
    transition(db, declined, PS.DECLINED, reason="test")
    db.commit()
    return event


def statuses(db: Session, event: Event) -> dict[str, str]:
    db.expire_all()
    rows = db.scalars(select(Participant).where(Participant.event_id == event.id))
    return {p.person.email: p.status.value for p in rows}


def audit_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def listed(*emails: str) -> list[ListedEmail]:
    return [ListedEmail(e, f"list line {n}") for n, e in enumerate(emails, start=1)]


def test_refused_before_the_event_starts(db: Session, event: Event) -> None:
    before = statuses(db, event), audit_count(db)
    with pytest.raises(AttendanceError, match=r"has not started yet .*2023-02-01 13:00 CET"):
        mark_attendance(db, event, listed(REGISTERED[0]), actor=ACTOR)
    assert (statuses(db, event), audit_count(db)) == before


def test_during_the_event_unlisted_people_are_left_alone(
    db: Session, event: Event, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(DURING)
    result = mark_attendance(db, event, listed(REGISTERED[0]), actor=ACTOR)
    db.commit()
    assert not result.absent_rest
    assert [c.email for c in result.attended] == [REGISTERED[0]]
    assert result.no_show == ()
    now = statuses(db, event)
    assert now[REGISTERED[0]] == "attended"
    assert now[REGISTERED[1]] == now[REGISTERED[2]] == "registered"


def test_after_the_event_the_rest_become_no_show_and_rerun_changes_nothing(
    db: Session, event: Event, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(AFTER)
    present = listed(REGISTERED[0], REGISTERED[1])
    result = mark_attendance(db, event, present, actor=ACTOR)
    db.commit()
    assert result.absent_rest
    assert {c.email for c in result.attended} == set(REGISTERED[:2])
    assert [c.email for c in result.no_show] == [REGISTERED[2]]
    after_first = statuses(db, event), audit_count(db)
    assert after_first[0] == {
        REGISTERED[0]: "attended",
        REGISTERED[1]: "attended",
        REGISTERED[2]: "no_show",
        "mo@leidenvaart.example": "waitlisted",
        "henk@veenoord.example": "declined",
    }

    again = mark_attendance(db, event, present, actor=ACTOR)
    db.commit()
    assert (again.attended, again.no_show, again.unchanged) == ((), (), 2)
    assert (statuses(db, event), audit_count(db)) == after_first


def test_every_change_is_audited_with_actor_and_source(
    db: Session, event: Event, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(AFTER)
    mark_attendance(db, event, listed(REGISTERED[0]), actor=ACTOR)
    db.commit()
    entries = db.scalars(select(AuditEntry).where(AuditEntry.actor == ACTOR)).all()
    moves = sorted((e.old_status, e.new_status, e.reason) for e in entries)
    assert moves == [
        ("registered", "attended", "present (list line 1)"),
        ("registered", "no_show", "not on the attendance list"),
        ("registered", "no_show", "not on the attendance list"),
    ]


def test_a_later_list_adds_and_corrects_but_never_demotes_by_omission(
    db: Session, event: Event, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(AFTER)
    mark_attendance(db, event, listed(REGISTERED[0]), actor=ACTOR)
    db.commit()
    # Jan did come after all (no_show → attended); Lotte is not on this list but stays.
    result = mark_attendance(db, event, listed(REGISTERED[2]), actor=ACTOR)
    db.commit()
    assert [(c.email, c.old_status) for c in result.attended] == [(REGISTERED[2], "no_show")]
    assert statuses(db, event)[REGISTERED[0]] == "attended"
    # An explicit correction the other way.
    fixed = mark_attendance(db, event, [], absent=listed(REGISTERED[0]), actor=ACTOR)
    db.commit()
    assert [(c.email, c.new_status) for c in fixed.no_show] == [(REGISTERED[0], "no_show")]


def test_a_list_with_problems_is_rejected_whole(
    db: Session, event: Event, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(AFTER)
    before = statuses(db, event), audit_count(db)
    present = [
        ListedEmail(REGISTERED[0], "door.csv line 2"),
        ListedEmail("onbekend@elders.example", "door.csv line 3"),
        ListedEmail("mo@leidenvaart.example", "door.csv line 4"),
    ]
    absent = [ListedEmail(REGISTERED[0], "--absent-email #1")]
    with pytest.raises(AttendanceError) as raised:
        mark_attendance(db, event, present, absent=absent, actor=ACTOR)
    problems = raised.value.problems
    assert problems == [
        f"door.csv line 3: onbekend@elders.example is not a participant of {event.slug}",
        "door.csv line 4: mo@leidenvaart.example is waitlisted, not registered; "
        "only registered people can be marked",
        f"--absent-email #1: {REGISTERED[0]} is also listed as present (door.csv line 2)",
    ]
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith(
        f"attendance for {event.slug}: rejected, nothing marked (3 problems): "
    )
    db.rollback()
    assert (statuses(db, event), audit_count(db)) == before


def test_an_empty_list_is_refused_rather_than_marking_everyone_absent(
    db: Session, event: Event, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(AFTER)
    with pytest.raises(AttendanceError, match="nobody is listed"):
        mark_attendance(db, event, [], actor=ACTOR)


def test_explicit_absent_rest_off_after_the_event(
    db: Session, event: Event, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(AFTER)
    result = mark_attendance(db, event, listed(REGISTERED[1]), actor=ACTOR, absent_rest=False)
    assert result.no_show == () and not result.absent_rest
    assert statuses(db, event)[REGISTERED[0]] == "registered"


def test_duplicates_on_the_list_count_once(
    db: Session, event: Event, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(DURING)
    result = mark_attendance(db, event, listed(REGISTERED[0], REGISTERED[0]), actor=ACTOR)
    assert len(result.attended) == 1 and result.unchanged == 0


# --------------------------------------------------------------------------- parsing


def test_plain_list_with_names_comments_and_blank_lines() -> None:
    data = b"# aanwezig\nLotte@Zwaanshoek.example\n\nFemke Visser <femke@oosterdijk.example>\n"
    items = parse_attendance_list(data, "door.txt")
    assert [(i.email, i.where) for i in items] == [
        ("lotte@zwaanshoek.example", "door.txt line 2"),
        ("femke@oosterdijk.example", "door.txt line 4"),
    ]


def test_excel_csv_with_bom_semicolons_and_an_e_mail_column() -> None:
    data = (
        "\ufeffNaam;Organisatie;E-mail;Aanwezig\r\n"
        "Lotte El Amrani;Gemeente Zwaanshoek;lotte@zwaanshoek.example;ja\r\n"
        ";;;\r\n"
        "Jan Meijer;Gemeente Bergveld;JAN@bergveld.example;ja\r\n"
    ).encode()
    items = parse_attendance_list(data, "lijst.csv")
    assert [(i.email, i.where) for i in items] == [
        ("lotte@zwaanshoek.example", "lijst.csv line 2"),
        ("jan@bergveld.example", "lijst.csv line 4"),
    ]


def test_every_bad_line_is_reported() -> None:
    data = b"naam,email\nLotte,lotte@zwaanshoek.example\nJan,jan-at-bergveld\nPiet,\n"
    with pytest.raises(AttendanceError) as raised:
        parse_attendance_list(data, "lijst.csv")
    assert raised.value.problems == [
        "line 3: 'jan-at-bergveld' is not an email address",
        "line 4: the email is empty",
    ]
    with pytest.raises(AttendanceError, match=r"line 2: 'lotte' is not an email"):
        parse_attendance_list(b"a@b.example\nlotte\n", "door.txt")


def test_csv_without_an_email_column_and_unreadable_files() -> None:
    with pytest.raises(AttendanceError, match="line 1: no column named email/e-mail"):
        parse_attendance_list(b"naam;organisatie\nLotte;Zwaanshoek\n", "lijst.csv")
    with pytest.raises(AttendanceError, match="not UTF-8"):
        parse_attendance_list("naam;email\nHélène;h@a.example\n".encode("cp1252"), "x.csv")
    with pytest.raises(AttendanceError, match="empty"):
        parse_attendance_list(b"\n\n", "x.csv")


def test_addresses_from_options() -> None:
    items = listed_from_options(["A@x.example", "Jan <jan@y.example>"], "--present-email")
    assert [(i.email, i.where) for i in items] == [
        ("a@x.example", "--present-email #1"),
        ("jan@y.example", "--present-email #2"),
    ]
    with pytest.raises(AttendanceError, match="--present-email #2: 'nope' is not an email"):
        listed_from_options(["a@x.example", "nope"], "--present-email")


def test_the_window_is_the_event_start(db: Session, event: Event) -> None:
    with (
        time_machine.travel(event.starts_at - timedelta(seconds=1), tick=False),
        pytest.raises(AttendanceError),
    ):
        mark_attendance(db, event, listed(REGISTERED[0]), actor=ACTOR)
    with time_machine.travel(event.starts_at, tick=False):
        result = mark_attendance(db, event, listed(REGISTERED[0]), actor=ACTOR)
    assert len(result.attended) == 1 and not result.absent_rest
