"""`rsvpmail demo` really shows the waitlist at work.

The demo is run once, on its shortest sensible clock, against a mail stack of its own and a
database in the test's directory. What it must show is read back from the audit trail and
the outbox, never from numbers written down here: a cancellation before the registration
deadline frees a seat, the seat is offered to someone on the waitlist, who accepts it and is
registered; an offer that ends without a "ja" (declined or expired) is passed on; and a
cancellation after the deadline makes no offer but tells the organiser. The demo's own
summary must agree with the audit trail.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from db.models import AuditEntry, Event, OutboundMessage, ParticipantStatus
from jobs.demo import DemoOptions, run_demo, waitlist_story
from workflows import clock

pytestmark = [pytest.mark.integration, pytest.mark.slow]

P = ParticipantStatus
DEMO_SECONDS = 60.0  # half the default; the simulated timeline is the same


@dataclass
class DemoRun:
    database: Path
    output: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    base = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    options = DemoOptions(
        database=base / "demo.db",
        workdir=base / "work",
        seconds=DEMO_SECONDS,
        console=Console(file=out, width=200, color_system=None),
    )
    previous = clock.set_clock(clock.system_clock)
    try:
        assert run_demo(options) == 0
    finally:
        clock.set_clock(previous)
    yield DemoRun(options.database, out.getvalue())


@dataclass(frozen=True)
class Move:
    participant: int
    old: str | None
    new: str
    before_deadline: bool


def _moves(database: Path) -> tuple[Event, list[Move], list[str]]:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with make_sessionmaker(engine)() as db:
            event = db.scalars(select(Event)).one()
            rows = db.execute(
                select(
                    AuditEntry.entity_id,
                    AuditEntry.old_status,
                    AuditEntry.new_status,
                    AuditEntry.at,
                )
                .where(AuditEntry.event_id == event.id, AuditEntry.machine == "participant")
                .order_by(AuditEntry.id)
            ).all()
            moves = [
                Move(entity, old, new, at <= event.registration_deadline)
                for entity, old, new, at in rows
            ]
            notices = list(
                db.scalars(
                    select(OutboundMessage.idempotency_key).where(
                        OutboundMessage.event_id == event.id,
                        OutboundMessage.kind == "organiser_notice",
                    )
                )
            )
            db.expunge(event)
            return event, moves, notices
    finally:
        engine.dispose()


def _history(moves: list[Move], participant: int) -> list[tuple[str | None, str]]:
    return [(m.old, m.new) for m in moves if m.participant == participant]


def test_a_cancellation_before_the_deadline_promotes_the_waitlist(demo_run: DemoRun) -> None:
    _event, moves, _notices = _moves(demo_run.database)
    early_cancellations = [
        m for m in moves if (m.old, m.new) == (P.REGISTERED, P.CANCELLED) and m.before_deadline
    ]
    assert early_cancellations, "nobody cancelled before the registration deadline"
    offers = [m for m in moves if (m.old, m.new) == (P.WAITLISTED, P.OFFERED)]
    assert offers, "no seat was offered to the waitlist"
    assert all(m.before_deadline for m in offers), "an offer was made after the deadline"
    promoted = [
        m.participant for m in offers if (P.OFFERED, P.REGISTERED) in _history(moves, m.participant)
    ]
    assert promoted, "nobody on the waitlist took an offered seat"
    for participant in promoted:
        history = _history(moves, participant)
        assert history.index((P.WAITLISTED, P.OFFERED)) < history.index((P.OFFERED, P.REGISTERED))


def test_an_offer_without_a_yes_is_passed_on(demo_run: DemoRun) -> None:
    _event, moves, _notices = _moves(demo_run.database)
    ended = [
        i
        for i, m in enumerate(moves)
        if m.old == P.OFFERED and m.new in (P.DECLINED, P.EXPIRED) and m.before_deadline
    ]
    assert ended, "no offer was declined or left to expire before the deadline"
    offers = [i for i, m in enumerate(moves) if (m.old, m.new) == (P.WAITLISTED, P.OFFERED)]
    for i in ended:
        assert any(j > i for j in offers), f"the seat of {moves[i]} was not offered on"


def test_a_cancellation_after_the_deadline_tells_the_organiser(demo_run: DemoRun) -> None:
    _event, moves, notices = _moves(demo_run.database)
    late = [
        m for m in moves if (m.old, m.new) == (P.REGISTERED, P.CANCELLED) and not m.before_deadline
    ]
    assert late, "nobody cancelled after the registration deadline"
    assert any(key.startswith("organiser_notice:seat_freed:") for key in notices)


def test_the_summary_tells_what_the_audit_trail_holds(demo_run: DemoRun) -> None:
    event, moves, _notices = _moves(demo_run.database)
    offered = sum(1 for m in moves if m.new == P.OFFERED)
    taken = sum(1 for m in moves if (m.old, m.new) == (P.OFFERED, P.REGISTERED))
    engine = make_engine(f"sqlite:///{demo_run.database}")
    try:
        with make_sessionmaker(engine)() as db:
            story = waitlist_story(db, db.get_one(Event, event.id))
    finally:
        engine.dispose()
    assert (story.offered, story.offers_taken) == (offered, taken)
    text = " ".join(demo_run.output.split())
    for line in story.lines():
        assert " ".join(line.split()) in text
    assert f"{offered} made — {taken} accepted" in text
