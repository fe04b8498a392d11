"""The demo: the whole "Leren van Rotterdam Zuid" registration, played in about two minutes.

It starts the local mail stack, a fresh SQLite database, loads the example event and invitee
list and runs the real service on an accelerated clock from early January through 3 February
2023, while a simulator plays the sixty invitees over IMAP and SMTP. The organiser's part —
sending the two invitation batches and marking attendance after the event — is played too.
At the end it prints the organiser's status view and what became of the waitlist (seats
freed before and after the deadline, offers made, taken, declined and expired, read from the
audit trail), and leaves the database behind, so every organiser command can be tried on it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker, upgrade
from db.models import (
    AuditEntry,
    Event,
    OutboundMessage,
    Participant,
    ParticipantStatus,
    Person,
)
from devmail import MailStack
from jobs.demo.simulator import Invitee, Simulator
from jobs.service import Service, TickIntervals
from jobs.settings import ImapSettings, ServiceSettings, SmtpSettings
from jobs.smtp_sender import send_due
from workflows.clock import AcceleratedClock, now, set_clock, system_clock
from workflows.event_config import load_event_config
from workflows.events import apply_event_config, get_event
from workflows.invitees import import_invitees, parse_invitee_csv

log = logging.getLogger("rsvpmail.demo")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
REPO = Path(__file__).resolve().parents[2]
EVENT_FILE = REPO / "events" / "leren-van-rotterdam-zuid.toml"
INVITEES_FILE = REPO / "events" / "leren-van-rotterdam-zuid-invitees.csv"

START = datetime(2023, 1, 9, 9, 0, tzinfo=AMSTERDAM)
SECOND_BATCH = datetime(2023, 1, 12, 10, 0, tzinfo=AMSTERDAM)
ATTENDANCE = datetime(2023, 2, 1, 18, 0, tzinfo=AMSTERDAM)
END = datetime(2023, 2, 3, 12, 0, tzinfo=AMSTERDAM)


@dataclass
class DemoOptions:
    database: Path = Path("rsvpmail.db")
    workdir: Path = Path(".demo")
    seconds: float = 120.0  # real time for the whole timeline
    console: Console | None = None


def run_demo(options: DemoOptions) -> int:
    console = options.console or Console()
    speed = (END - START).total_seconds() / options.seconds
    _fresh(options)
    engine = make_engine(f"sqlite:///{options.database}")
    upgrade(engine)
    factory = make_sessionmaker(engine)
    stack = MailStack(base_dir=options.workdir / "mail").start()
    console.print(
        f"[bold]rsvpmail demo[/]: local mail stack on IMAP {stack.imap_port} / SMTP "
        f"{stack.smtp_port}; database {options.database}; clock ×{speed:,.0f} "
        f"({START:%d %b} → {END:%d %b %Y} in ~{options.seconds:.0f} s)"
    )
    previous_clock = set_clock(AcceleratedClock(START, speed))
    service: Service | None = None
    simulator: Simulator | None = None
    try:
        slug = _load_event(factory)
        settings = _settings(stack, factory, slug, speed)
        service = Service(
            settings=settings,
            engine=engine,
            intervals=TickIntervals(
                inbox=1, outbox=0.5, offers=0.5, timeline=0.5, housekeeping=3600
            ),
            name="demo",
        )
        simulator = Simulator(
            invitees=_invitees(factory),
            imap_host=stack.imap_host,
            imap_port=stack.imap_port,
            smtp_host=stack.smtp_host,
            smtp_port=stack.smtp_port,
            password=stack.password,
            organiser_address=settings.imap.user,
        )
        service.start()
        simulator.start()
        _play_organiser(console, factory, slug)
        simulator.stop()
        service.stop()
        # What the last ticks queued, so every mailbox is complete at the end.
        send_due(factory, settings, worker="demo-final")
        service = None
        # Still on the demo's clock: the status is "as of" the simulated 3 February.
        _final_report(console, factory, slug, simulator)
        set_clock(previous_clock)
    finally:
        if simulator is not None:
            simulator.stop()
        if service is not None:
            service.stop()
        set_clock(system_clock)
        stack.stop()
        engine.dispose()
    console.print(
        f"\nThe database is kept in [bold]{options.database}[/]; try "
        f"`rsvpmail status {slug}`, `rsvpmail review {slug}` or `rsvpmail people {slug}`. "
        f"Mailboxes are kept under {options.workdir / 'mail'}."
    )
    return 0


def _fresh(options: DemoOptions) -> None:
    """Start from nothing, but never overwrite a database that holds other events."""
    if options.database.exists():
        engine = make_engine(f"sqlite:///{options.database}")
        try:
            with engine.connect() as conn:
                slugs = set(conn.execute(select(Event.slug)).scalars())
        except Exception:
            slugs = set()
        finally:
            engine.dispose()
        foreign = slugs - {load_event_config(EVENT_FILE).slug}
        if foreign:
            raise SystemExit(
                f"{options.database} holds other events ({', '.join(sorted(foreign))}); the demo "
                "will not overwrite it — run it in another directory"
            )
        for suffix in ("", "-wal", "-shm"):
            Path(f"{options.database}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(options.workdir, ignore_errors=True)
    options.workdir.mkdir(parents=True)


def _load_event(factory: sessionmaker[Session]) -> str:
    cfg = load_event_config(EVENT_FILE)
    rows = parse_invitee_csv(INVITEES_FILE.read_bytes(), str(INVITEES_FILE))
    with factory() as db, db.begin():
        event, _ = apply_event_config(db, cfg)
        import_invitees(db, event, rows)
    return cfg.slug


def _settings(
    stack: MailStack, factory: sessionmaker[Session], slug: str, speed: float
) -> ServiceSettings:
    with factory() as db:
        organiser = get_event(db, slug).reply_address
    return ServiceSettings(
        database_url="",
        instance_name="demo",
        imap=ImapSettings(
            host=stack.imap_host,
            port=stack.imap_port,
            tls="none",
            user=organiser,
            password=stack.password,
            idle=True,
            poll_seconds=2.0,
            sent_folder="Sent",
        ),
        # Leases are measured on the service's clock; at ×20,000 five real minutes are
        # about three simulated months.
        smtp=SmtpSettings(
            host=stack.smtp_host, port=stack.smtp_port, tls="none", lease_seconds=300 * speed
        ),
    )


def _invitees(factory: sessionmaker[Session]) -> list[Invitee]:
    with factory() as db:
        people = db.scalars(select(Person).order_by(Person.id)).all()
        return [Invitee(p.name, p.email, p.language) for p in people]


def _play_organiser(console: Console, factory: sessionmaker[Session], slug: str) -> None:
    """The organiser's actions at their moments in the timeline, while the service runs."""
    from workflows.invitations import queue_invitations

    def invite(batch: str) -> Callable[[], str]:
        def act() -> str:
            with factory() as db, db.begin():
                queued = queue_invitations(db, get_event(db, slug), batch=batch, only=None)
            return f"organiser sends invitation batch {batch!r}: {len(queued)} invitations"

        return act

    def attendance() -> str:
        return _mark_attendance(factory, slug)

    script = [
        (START, invite("eerste-ronde")),
        (SECOND_BATCH, invite("tweede-ronde")),
        (ATTENDANCE, attendance),
    ]
    last_day = None
    while now() < END:
        while script and script[0][0] <= now():
            _when, act = script.pop(0)
            console.print(f"[cyan]{now().astimezone(AMSTERDAM):%a %d %b %H:%M}[/] {act()}")
        day = now().astimezone(AMSTERDAM).date()
        if day != last_day:
            last_day = day
            console.print(f"[dim]{day:%a %d %b %Y}[/]  {_progress(factory, slug)}")
        time.sleep(0.2)


def _mark_attendance(factory: sessionmaker[Session], slug: str) -> str:
    """The organiser ticks the attendance list: everyone came except two."""
    from workflows.attendance import listed_from_options, mark_attendance

    with factory() as db, db.begin():
        event = get_event(db, slug)
        registered = db.scalars(
            select(Person.email)
            .join(Participant, Participant.person_id == Person.id)
            .where(
                Participant.event_id == event.id, Participant.status == ParticipantStatus.REGISTERED
            )
            .order_by(Participant.id)
        ).all()
        if len(registered) < 3:
            return f"organiser finds only {len(registered)} registered; no attendance to mark"
        present = listed_from_options(registered[2:], "attendance list")
        result = mark_attendance(db, event, present, absent_rest=True, actor="organiser:demo")
    return (
        f"organiser marks attendance: {len(result.attended)} present, "
        f"{len(result.no_show)} did not come"
    )


def _progress(factory: sessionmaker[Session], slug: str) -> str:
    with factory() as db:
        event = get_event(db, slug)
        counts: dict[str, int] = {}
        for status in db.scalars(
            select(Participant.status).where(Participant.event_id == event.id)
        ):
            counts[str(status)] = counts.get(str(status), 0) + 1
        sent = len(
            db.scalars(
                select(OutboundMessage.id).where(
                    OutboundMessage.event_id == event.id, OutboundMessage.sent_at.is_not(None)
                )
            ).all()
        )
    shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return f"{shown}; mails sent {sent}"


@dataclass
class WaitlistStory:
    """What happened to freed seats, from the audit trail (counts of participants)."""

    cancelled_before_deadline: int = 0
    cancelled_after_deadline: int = 0
    offered: int = 0
    offers_taken: int = 0
    offers_declined: int = 0
    offers_expired: int = 0
    seat_freed_notices: int = 0  # the organiser told instead of an offer

    def lines(self) -> list[str]:
        return [
            f"Before the registration deadline "
            f"{_n(self.cancelled_before_deadline, 'registered invitee')} cancelled; the freed "
            "seats were offered to the waitlist in order.",
            f"Seat offers: {self.offered} made — {self.offers_taken} accepted (promoted from "
            f"the waitlist), {self.offers_declined} declined, {self.offers_expired} expired; "
            "a declined or expired offer passes to the next in line.",
            f"After the deadline {self.cancelled_after_deadline} cancelled: no offers are made "
            "then, the organiser is told about the freed seat instead "
            f"({_n(self.seat_freed_notices, 'notice')}).",
        ]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def waitlist_story(db: Session, event: Event) -> WaitlistStory:
    entries = db.execute(
        select(AuditEntry.at, AuditEntry.old_status, AuditEntry.new_status)
        .where(AuditEntry.event_id == event.id, AuditEntry.machine == "participant")
        .order_by(AuditEntry.id)
    ).all()
    story = WaitlistStory()
    for at, old, new in entries:
        if old == ParticipantStatus.REGISTERED and new == ParticipantStatus.CANCELLED:
            if at <= event.registration_deadline:
                story.cancelled_before_deadline += 1
            else:
                story.cancelled_after_deadline += 1
        elif new == ParticipantStatus.OFFERED:
            story.offered += 1
        elif old == ParticipantStatus.OFFERED:
            if new == ParticipantStatus.REGISTERED:
                story.offers_taken += 1
            elif new == ParticipantStatus.DECLINED:
                story.offers_declined += 1
            elif new == ParticipantStatus.EXPIRED:
                story.offers_expired += 1
    story.seat_freed_notices = len(
        db.scalars(
            select(OutboundMessage.id).where(
                OutboundMessage.event_id == event.id,
                OutboundMessage.idempotency_key.like("organiser_notice:seat_freed:%"),
            )
        ).all()
    )
    return story


def _final_report(
    console: Console, factory: sessionmaker[Session], slug: str, simulator: Simulator
) -> None:
    from jobs.commands.organiser import render_status
    from workflows.reports import status_report

    with factory() as db:
        event = get_event(db, slug)
        report = status_report(db, event)
        story = waitlist_story(db, event)
    console.rule("Final status")
    render_status(console, report)
    console.rule("The waitlist")
    for line in story.lines():
        console.print(line)
    console.print(f"The simulated invitees sent {len(simulator.sent)} messages.")


__all__ = ["DemoOptions", "WaitlistStory", "run_demo", "waitlist_story"]
