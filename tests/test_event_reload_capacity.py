"""Loading an event's config again never silently undoes `rsvpmail capacity`.

The organiser raises the capacity with the command, later reloads the TOML to fix a typo: the
command's capacity stays and the load says so. The file's capacity wins when it changed since
the last load, or with --capacity-from-file; such a change follows the capacity rule (raising
offers seats to the waitlist, lowering removes nobody) and is audited. SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db.models import AuditEntry, Participant
from db.models import ParticipantStatus as P
from jobs.commands import capacity, setup
from jobs.commands.capacity import capacity_change_lines
from jobs.commands.common import install_root_options
from tests.conftest import EVENT_TOML
from tests.factories import event_config
from tests.mailfactory import ManualClock, World
from workflows.errors import RsvpError
from workflows.event_config import SessionSpec
from workflows.events import load_event
from workflows.registration import CapacityChange, change_capacity
from workflows.understanding import ReplyKind


def registered_and_waiting(w: World, registered: int, waiting: int) -> list[Participant]:
    """Everyone says yes: the first `registered` get a seat, the rest wait (returned)."""
    people = [w.invitee() for _ in range(registered + waiting)]
    for p in people:
        w.tell(p, ReplyKind.ACCEPT, session="wonen")
    assert w.statuses(*people[:registered]) == [P.REGISTERED] * registered
    return people[registered:]


def capacity_audits(db: Session) -> list[tuple[str, str, str | None]]:
    rows = db.scalars(
        select(AuditEntry).where(AuditEntry.machine == "event").order_by(AuditEntry.id)
    )
    return [(e.actor, e.new_status, e.old_status) for e in rows]


def test_reload_keeps_the_capacity_set_by_command(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=2)
    waiting = registered_and_waiting(w, 2, 2)
    change_capacity(db, w.event, 4, actor="organiser")
    db.commit()
    assert w.statuses(*waiting) == [P.OFFERED, P.OFFERED]

    loaded = load_event(db, event_config(capacity=2, title="Leren van Rotterdam-Zuid"))
    db.commit()

    assert loaded.capacity_kept and loaded.capacity_change is None
    assert (loaded.event.capacity, loaded.file_capacity) == (4, 2)
    assert loaded.event.title == "Leren van Rotterdam-Zuid"  # the rest of the file is applied
    assert w.statuses(*waiting) == [P.OFFERED, P.OFFERED]
    assert len(capacity_audits(db)) == 1  # only the command's change


def test_a_changed_file_capacity_is_applied_and_offers_seats(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=2)
    waiting = registered_and_waiting(w, 2, 3)
    change_capacity(db, w.event, 3, actor="organiser")
    db.commit()
    assert w.statuses(*waiting) == [P.OFFERED, P.WAITLISTED, P.WAITLISTED]

    # The organiser edited the file's capacity (2 → 5) since it was last loaded.
    loaded = load_event(db, event_config(capacity=5), actor="ops@bzk.example")
    db.commit()

    assert not loaded.capacity_kept and loaded.capacity_change is not None
    assert (loaded.capacity_change.old, loaded.capacity_change.new) == (3, 5)
    assert loaded.capacity_change.offered == 2
    assert w.statuses(*waiting) == [P.OFFERED, P.OFFERED, P.OFFERED]
    assert capacity_audits(db)[-1] == ("ops@bzk.example", "capacity=5", "capacity=3")

    # Loading the same file again changes nothing more.
    again = load_event(db, event_config(capacity=5))
    db.commit()
    assert again.capacity_change is None and not again.capacity_kept
    assert len(capacity_audits(db)) == 2


def test_capacity_from_file_lowers_without_unregistering_anyone(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=3)
    registered = [w.invitee() for _ in range(3)]
    for p in registered:
        w.tell(p, ReplyKind.ACCEPT, session="wonen")
    change_capacity(db, w.event, 6, actor="organiser")
    db.commit()

    loaded = load_event(db, event_config(capacity=3), capacity_from_file=True)
    db.commit()
    assert loaded.capacity_change is not None and loaded.event.capacity == 3
    assert w.statuses(*registered) == [P.REGISTERED] * 3

    lowered = load_event(db, event_config(capacity=1), capacity_from_file=True)
    db.commit()
    assert lowered.capacity_change is not None
    assert lowered.capacity_change.registered_over_capacity == 2
    assert w.statuses(*registered) == [P.REGISTERED] * 3
    newcomer = w.invitee()
    w.tell(newcomer, ReplyKind.ACCEPT, session="wonen")
    assert w.status(newcomer) is P.WAITLISTED


def test_event_load_command_says_what_it_did_with_the_capacity(
    db: Session, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    app = typer.Typer()  # only the commands under test
    install_root_options(app)
    setup.register(app)
    capacity.register(app)

    def rsvpmail(*args: str) -> str:
        result = CliRunner().invoke(app, ["--database-url", database_url, *args])
        assert result.exit_code == 0, result.output
        return result.output

    toml = tmp_path / "event.toml"
    text = EVENT_TOML.read_text(encoding="utf-8")
    assert "capacity = 40" in text
    toml.write_text(text, encoding="utf-8")
    assert "created event" in rsvpmail("event", "load", str(toml))
    slug = event_config().slug
    rsvpmail("capacity", slug, "55")

    toml.write_text(text.replace('wethouders in de wijk"', 'wethouders in de wijken"'), "utf-8")
    out = rsvpmail("event", "load", str(toml))
    assert "updated event" in out
    assert "capacity stays 55" in out and "the file says 40" in out
    assert "--capacity-from-file" in out

    out = rsvpmail("event", "load", str(toml), "--capacity-from-file")
    assert f"capacity of {slug}: 55 → 40" in out

    toml.write_text(text.replace("capacity = 40", "capacity = 45"), "utf-8")
    out = rsvpmail("event", "load", str(toml))
    assert f"capacity of {slug}: 40 → 45" in out
    db.commit()  # a fresh read transaction
    assert [new for _actor, new, _old in capacity_audits(db)] == [
        "capacity=55",
        "capacity=40",
        "capacity=45",
    ]


def test_the_capacity_command_refuses_what_the_file_refuses(
    db: Session, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    app = typer.Typer()  # only the commands under test
    install_root_options(app)
    setup.register(app)
    capacity.register(app)

    def rsvpmail(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--database-url", database_url, *args])
        return result.exit_code, result.output

    assert rsvpmail("event", "load", str(EVENT_TOML))[0] == 0
    slug = event_config().slug
    assert rsvpmail("capacity", slug, "0") == (2, "error: capacity: must be at least 1\n")
    assert rsvpmail("capacity", slug, "--", "-2") == (2, "error: capacity: must be at least 1\n")

    toml = tmp_path / "event.toml"
    toml.write_text(EVENT_TOML.read_text("utf-8").replace("capacity = 40", "capacity = 0"), "utf-8")
    assert rsvpmail("event", "load", str(toml)) == (
        2,
        f"error: {toml}: 1 problem:\n  capacity: must be at least 1\n",
    )
    code, out = rsvpmail("capacity", slug, "1")
    assert code == 0 and f"capacity of {slug}: 40 → 1" in out
    db.commit()  # a fresh read transaction
    assert capacity_audits(db) == [("organiser", "capacity=1", "capacity=40")]  # only that one


def test_capacity_changes_are_told_in_words() -> None:
    one = CapacityChange(
        old=2, new=3, offered=1, seats_left=0, waiting=2, registered_over_capacity=0
    )
    assert capacity_change_lines("e", one)[1] == "1 seat offered to the waitlist"
    two = CapacityChange(
        old=2, new=4, offered=2, seats_left=0, waiting=1, registered_over_capacity=0
    )
    assert capacity_change_lines("e", two)[1] == "2 seats offered to the waitlist"


def test_a_removed_session_is_refused_while_someone_has_it_and_forgotten_by_the_rest(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=5)
    staying, leaving = w.invitee(), w.invitee()
    for p in (staying, leaving):
        w.tell(p, ReplyKind.ACCEPT, session="wonen")
    w.tell(leaving, ReplyKind.DECLINE)
    db.commit()
    without_wonen = event_config(
        capacity=5, sessions=tuple(s for s in event_config().sessions if s.key != "wonen")
    )

    with pytest.raises(RsvpError) as refused:
        load_event(db, without_wonen)
    db.rollback()
    message = str(refused.value)
    assert staying.person.email in message and leaving.person.email not in message
    assert f"rsvpmail answer {w.event.slug}" in message

    w.tell(staying, ReplyKind.DECLINE)
    db.commit()
    load_event(db, without_wonen)  # nobody counts on wonen any more: it goes
    db.commit()
    assert [s.key for s in w.event.sessions] == [s.key for s in without_wonen.sessions]
    assert {db.get(Participant, p.id).session_id for p in (staying, leaving)} == {None}  # type: ignore[union-attr]


def test_more_room_in_a_deelsessie_on_reload_is_offered_to_those_waiting_for_it(
    db: Session, clock: ManualClock
) -> None:
    def wonen_holds(places: int) -> tuple[SessionSpec, ...]:
        return tuple(
            dataclasses.replace(s, capacity=places if s.key == "wonen" else None)
            for s in event_config().sessions
        )

    w = World(db, clock, capacity=10, sessions=wonen_holds(1))
    first, second = w.invitee(), w.invitee()
    for p in (first, second):
        w.tell(p, ReplyKind.ACCEPT, session="wonen")
    assert w.statuses(first, second) == [P.REGISTERED, P.WAITLISTED]

    load_event(db, event_config(capacity=10, sessions=wonen_holds(2)))
    db.commit()
    assert w.statuses(first, second) == [P.REGISTERED, P.OFFERED]
