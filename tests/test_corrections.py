"""Corrections by hand: answers given by phone, offers by hand, dismissing quarantined mail.

The workflow functions (workflows.corrections) on SQLite and PostgreSQL, then the commands
through the real CLI (`rsvpmail answer`, `rsvpmail offer`, `rsvpmail inbox dismiss`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from db.models import (
    AuditEntry,
    InboundMessage,
    InboundStatus,
    Participant,
    ParticipantStatus,
)
from jobs.cli import app
from tests.factories import event_config, one_line_error, sessions_with_capacity
from tests.mailfactory import ManualClock, World, reply
from workflows.clock import now
from workflows.corrections import (
    Answer,
    dismiss_quarantined,
    offer_by_hand,
    parse_person,
    record_answer,
)
from workflows.errors import NotFound, RsvpError
from workflows.inbound import record_inbound, resolve_review
from workflows.seats import seats_taken
from workflows.transitions import transition
from workflows.understanding import PersonMention, ReplyKind

P = ParticipantStatus
ACCEPT, DECLINE = ReplyKind.ACCEPT, ReplyKind.DECLINE
ORGANISER = "organiser:marieke"


def fill(w: World, n: int, session: str = "wonen") -> list[Participant]:
    people = [w.invitee() for _ in range(n)]
    for p in people:
        w.tell(p, ACCEPT, session=session)
    return people


def answer(w: World, p: Participant, how: Answer, **kw: Any) -> Any:
    kw.setdefault("actor", ORGANISER)
    result = record_answer(w.db, w.event, p.person.email, answer=how, **kw)
    w.db.commit()
    return result


def refused(w: World, p: Participant, how: Answer, match: str, **kw: Any) -> None:
    before = w.snapshot()
    with pytest.raises(RsvpError, match=match):
        answer(w, p, how, **kw)
    w.db.rollback()
    assert w.snapshot() == before


def answer_rows(db: Session, p: Participant) -> list[AuditEntry]:
    return list(
        db.scalars(
            select(AuditEntry)
            .where(AuditEntry.machine == "answer", AuditEntry.entity_id == p.id)
            .order_by(AuditEntry.id)
        )
    )


# --------------------------------------------------------------------------- answers


def test_accept_by_phone_registers_confirms_and_audits_the_organiser(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=5)
    p = w.invitee("Lotte El Amrani")
    result = answer(w, p, Answer.ACCEPT, session="Wonen", note="belde op dinsdag")
    assert w.status(p) is P.REGISTERED
    assert (result.old_status, result.new_status, result.session_key) == (
        P.INVITED,
        P.REGISTERED,
        "wonen",
    )
    assert result.not_registered is None
    assert [(m.kind, m.recipient) for m in result.mails] == [
        ("registration_confirmed", p.person.email)
    ]
    assert w.kinds_to(p) == ["registration_confirmed"]
    moved = db.scalars(
        select(AuditEntry).where(
            AuditEntry.machine == "participant",
            AuditEntry.entity_id == p.id,
            AuditEntry.new_status == "registered",
        )
    ).one()
    assert moved.actor == ORGANISER and moved.inbound_message_id is None
    [row] = answer_rows(db, p)
    assert row.actor == ORGANISER
    assert (row.old_status, row.new_status) == ("invited", "registered")
    assert "accept, deelsessie wonen" in row.reason and "note: belde op dinsdag" in row.reason


def test_a_wrong_resolve_is_corrected_with_a_decline_and_the_seat_is_offered(
    db: Session, clock: ManualClock
) -> None:
    """The user's walk-through: `review resolve 5 --as accept` was wrong; the item is
    closed, so the correction is an answer by hand, which frees the seat for the waitlist."""
    w = World(db, clock, capacity=1)
    wrong, waiting = w.invitee(), w.invitee()
    inbound = w.tell(wrong, ReplyKind.UNCLEAR)
    assert inbound.status is InboundStatus.REVIEW
    resolve_review(db, inbound.id, as_kind=ACCEPT, actor=ORGANISER)
    db.commit()
    w.tell(waiting, ACCEPT)
    assert w.statuses(wrong, waiting) == [P.REGISTERED, P.WAITLISTED]
    with pytest.raises(RsvpError, match="not waiting for review"):
        resolve_review(db, inbound.id, as_kind=DECLINE, actor=ORGANISER)
    db.rollback()

    result = answer(w, wrong, Answer.DECLINE, note="resolved by mistake")
    assert w.statuses(wrong, waiting) == [P.CANCELLED, P.OFFERED]
    assert "1 new offer(s)" in result.summary
    kinds = [(m.kind, m.recipient) for m in result.mails]
    assert ("cancellation_confirmed", wrong.person.email) in kinds
    assert ("seat_offered", waiting.person.email) in kinds


def test_cancel_frees_the_seat_and_takes_companions_along(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=2)
    p = w.invitee()
    w.tell(p, ACCEPT, session="wonen", companions=(PersonMention("Karin Smit", "k@x.example"),))
    [karin] = w.companions(p)
    waiting = w.invitee()
    w.tell(waiting, ACCEPT)
    result = answer(w, p, Answer.CANCEL)
    assert w.statuses(p, karin) == [P.CANCELLED, P.CANCELLED]
    assert w.status(waiting) is P.OFFERED
    assert "cancellation_confirmed" in w.kinds_to(karin)
    assert result.new_status is P.CANCELLED


def test_cancel_takes_someone_off_the_waitlist(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=1)
    fill(w, 1)
    waiting = w.invitee()
    w.tell(waiting, ACCEPT)
    answer(w, waiting, Answer.CANCEL)
    db.refresh(waiting)
    assert waiting.status is P.CANCELLED and waiting.waitlist_seq is None


def test_cancel_without_a_place_is_refused(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    refused(w, p, Answer.CANCEL, "invited: there is no place to cancel.*--as decline")


def test_tentative_by_phone_is_recorded_and_audited(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    result = answer(w, p, Answer.TENTATIVE, note="weet het nog niet")
    db.refresh(p)
    assert p.status is P.INVITED and p.tentative_at == now()
    assert w.kinds_to(p) == ["tentative_ack"]
    [row] = answer_rows(db, p)  # the only trace of it in the audit
    assert (row.old_status, row.new_status) == ("invited", "invited")
    assert result.new_status is P.INVITED


def test_tentative_from_someone_registered_is_refused_with_a_hint(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    [p] = fill(w, 1)
    refused(w, p, Answer.TENTATIVE, r"registered.*a cancellation\?.*--as cancel")


def test_accept_with_another_session_moves_a_registered_person_and_companion(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=5)
    p = w.invitee()
    w.tell(p, ACCEPT, session="wonen", companions=(PersonMention("Karin Smit", "k@x.example"),))
    [karin] = w.companions(p)
    result = answer(w, p, Answer.ACCEPT, session="werk")
    db.refresh(p)
    db.refresh(karin)
    assert p.session is not None and p.session.key == "werk"
    assert karin.session is not None and karin.session.key == "werk"
    assert w.statuses(p, karin) == [P.REGISTERED, P.REGISTERED]
    assert result.summary == "deelsessie set to werk (and 1 companion(s))"
    assert w.kinds_to(p)[-1] == "session_confirmed"
    assert seats_taken(db, w.event) == 2


def test_moving_into_a_full_session_is_refused(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=10, sessions=sessions_with_capacity(wonen=1))
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT, session="wonen")
    w.tell(b, ACCEPT, session="werk")
    full = "deelsessie 'wonen', which is full.*nothing changed"
    refused(w, b, Answer.ACCEPT, full, session="wonen")


def test_unknown_session_lists_the_events_sessions(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    with pytest.raises(RsvpError, match="no deelsessie 'zorg'; its deelsessies: onderwijs, werk"):
        answer(w, p, Answer.ACCEPT, session="zorg")
    with pytest.raises(RsvpError, match="accept only"):
        answer(w, p, Answer.DECLINE, session="wonen")


def test_an_address_not_invited_is_refused(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    other = World(db, clock, slug="ander-event")
    stranger = other.invitee()  # invited, but to another event
    for address in ("nobody@nowhere.example", stranger.person.email):
        with pytest.raises(NotFound, match=f"{address} is not invited to {w.event.slug}"):
            record_answer(db, w.event, address, answer=Answer.ACCEPT, actor=ORGANISER)
        db.rollback()
    with pytest.raises(RsvpError, match="not an e-mail address"):
        record_answer(db, w.event, "Jan de Vries", answer=Answer.ACCEPT, actor=ORGANISER)


def test_accept_with_companions_adds_them_when_they_fit(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=5)
    p = w.invitee()
    answer(w, p, Answer.ACCEPT, session="wonen", companions=[parse_person("Karin <k@x.example>")])
    [karin] = w.companions(p)
    assert w.statuses(p, karin) == [P.REGISTERED, P.REGISTERED]
    assert "companion_confirmed" in w.kinds_to(karin)


def test_too_many_companions_are_refused(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=5)
    p = w.invitee()
    two = [PersonMention("A", "a@x.example"), PersonMention("B", "b@x.example")]
    refused(w, p, Answer.ACCEPT, "at most 1 allowed", companions=two)


# --------------------------------------------------------------------------- from the waitlist


def test_accept_registers_someone_waiting_by_hand_after_the_deadline(
    db: Session, clock: ManualClock
) -> None:
    """No offers after the deadline: the notice says "offer the seat by hand" or register."""
    w = World(db, clock, capacity=1)
    [first] = fill(w, 1)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT)
    w.tell(b, ACCEPT, session="werk")
    clock.set(w.event.registration_deadline + timedelta(hours=1))
    w.tell(first, DECLINE)
    assert w.statuses(first, a, b) == [P.CANCELLED, P.WAITLISTED, P.WAITLISTED]

    result = answer(w, b, Answer.ACCEPT)  # b, not a: the organiser decides
    assert w.statuses(a, b) == [P.WAITLISTED, P.REGISTERED]
    db.refresh(b)
    assert b.waitlist_seq is None and b.session is not None and b.session.key == "werk"
    assert result.summary.endswith("passed 1 person(s) waiting ahead of them")
    assert result.not_registered is None
    assert [m.kind for m in result.mails] == ["registration_confirmed"]
    reasons = db.scalars(
        select(AuditEntry.reason).where(
            AuditEntry.machine == "participant",
            AuditEntry.entity_id == b.id,
            AuditEntry.actor == ORGANISER,
        )
    ).all()
    assert reasons == [f"registered by hand from the waitlist (number {2})"]


def test_registering_a_waiting_party_takes_the_companion_and_new_session(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=3)
    one, _two = fill(w, 2)
    blocker = w.invitee()  # a party of 2: waits first in line
    w.tell(blocker, ACCEPT, companions=(PersonMention("X", "x@x.example"),))
    p = w.invitee()
    w.tell(p, ACCEPT, companions=(PersonMention("Karin", "k@x.example"),))
    [karin] = w.companions(p)
    assert w.statuses(blocker, p, karin) == [P.WAITLISTED] * 3
    clock.set(w.event.registration_deadline + timedelta(hours=1))
    w.tell(one, DECLINE)  # two seats free, but no offers after the deadline
    refused(w, karin, Answer.ACCEPT, "waits in the party of")
    result = answer(w, p, Answer.ACCEPT, session="onderwijs")
    db.refresh(karin)
    assert w.statuses(blocker, p, karin) == [P.WAITLISTED, P.REGISTERED, P.REGISTERED]
    assert result.summary.endswith("(party of 2); passed 2 person(s) waiting ahead of them")
    assert karin.session is not None and karin.session.key == "onderwijs"
    assert "companion_confirmed" in w.kinds_to(karin)


def test_accept_from_the_waitlist_without_room_says_so(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=1)
    fill(w, 1)
    waiting = w.invitee()
    w.tell(waiting, ACCEPT)
    result = answer(w, waiting, Answer.ACCEPT)
    assert w.status(waiting) is P.WAITLISTED
    no_room = "on the waitlist at position 1: no room (0 seat(s) free for a party of 1)"
    assert result.not_registered == no_room
    assert result.waitlist_position == 1
    assert result.summary == "already on the waitlist; position sent again"


def test_a_new_acceptance_behind_others_is_waitlisted_then_registered_when_asked_again(
    db: Session, clock: ManualClock
) -> None:
    # Within the no-offers window before the start, a freed seat is not offered: the one
    # waiting keeps their claim, and a newcomer is waitlisted behind them.
    w = World(db, clock, capacity=1, registration_deadline=event_config().starts_at)
    [first_in] = fill(w, 1)
    waiting = w.invitee()
    w.tell(waiting, ACCEPT)
    clock.set(w.event.starts_at - timedelta(hours=w.event.no_offers_within_hours - 1))
    w.tell(first_in, DECLINE, mentions_cancellation=True)
    p = w.invitee()
    first = answer(w, p, Answer.ACCEPT)
    assert first.new_status is P.WAITLISTED
    assert first.not_registered is not None
    assert "a waiting party fits the free seats first" in first.not_registered
    assert "record the acceptance again to register them by hand" in first.not_registered
    second = answer(w, p, Answer.ACCEPT)
    assert second.new_status is P.REGISTERED


def test_late_acceptance_under_policy_closed_says_not_registered(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=10, late_policy="closed")
    p = w.invitee()
    clock.set(w.event.registration_deadline + timedelta(minutes=5))
    result = answer(w, p, Answer.ACCEPT)
    assert result.new_status is P.INVITED
    assert result.not_registered == "late acceptance: registration is closed, nothing changed"


# --------------------------------------------------------------------------- offers by hand


def test_offer_by_hand_after_the_deadline(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=1)
    [first] = fill(w, 1)
    a, b = w.invitee(), w.invitee()
    w.tell(a, ACCEPT)
    w.tell(b, ACCEPT)
    clock.set(w.event.starts_at - timedelta(hours=30))  # after the deadline
    w.tell(first, DECLINE)
    assert w.statuses(a, b) == [P.WAITLISTED, P.WAITLISTED]

    result = offer_by_hand(db, w.event, b.person.email, actor=ORGANISER, note="kent de buurt")
    db.commit()
    db.refresh(b)
    assert w.statuses(a, b) == [P.WAITLISTED, P.OFFERED]
    # The usual expiry (48 h) would end after the start: the offer ends at the start.
    assert b.offer_expires_at == w.event.starts_at == result.expires_at
    assert (result.party_size, result.waiting_ahead, result.mailed) == (1, 1, True)
    assert w.kinds_to(b)[-1] == "seat_offered"
    audit = db.scalars(
        select(AuditEntry).where(AuditEntry.entity_id == b.id, AuditEntry.new_status == "offered")
    ).one()
    assert audit.actor == ORGANISER and "note: kent de buurt" in audit.reason
    # An answer by mail (or by hand) takes the offer as usual.
    answer(w, b, Answer.ACCEPT)
    assert w.status(b) is P.REGISTERED

    with pytest.raises(RsvpError, match="no room to offer"):
        offer_by_hand(db, w.event, a.person.email, actor=ORGANISER)
    db.rollback()
    with pytest.raises(RsvpError, match="registered already"):
        offer_by_hand(db, w.event, b.person.email, actor=ORGANISER)
    db.rollback()
    with pytest.raises(RsvpError, match=r"not on the waitlist.*rsvpmail answer"):
        offer_by_hand(db, w.event, first.person.email, actor=ORGANISER)


# --------------------------------------------------------------------------- quarantine


def quarantined(db: Session, *, headers_only: bool = False) -> InboundMessage:
    raw = reply(to_token=None, from_="groot@gemeente.example", text="Ja, ik kom. " + "x" * 500)
    row, _ = record_inbound(db, raw, mailbox="INBOX", uidvalidity=1, uid=7)
    if headers_only:  # as the reader stores an oversized message
        row.raw = raw[: raw.index(b"\n\n") + 2]
    row.error = "message of 40,000 bytes exceeds max_message_bytes"
    row.moved_at = now()
    transition(db, row, InboundStatus.QUARANTINED, reason=row.error, inbound_message_id=row.id)
    db.commit()
    return row


def test_dismiss_closes_a_quarantined_message_and_keeps_it(db: Session, clock: ManualClock) -> None:
    row = quarantined(db, headers_only=True)
    raw = row.raw
    dismiss_quarantined(db, row.id, reason="answered by phone", actor=ORGANISER)
    db.commit()
    db.refresh(row)
    assert row.status is InboundStatus.PROCESSED
    assert row.resolution == f"dismissed by {ORGANISER}: answered by phone"
    assert row.resolved_at == now() and row.moved_at is None  # the reader moves the copy
    assert row.raw == raw and row.error is not None
    last = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.machine == "inbound", AuditEntry.entity_id == row.id)
        .order_by(AuditEntry.id.desc())
    ).first()
    assert last is not None
    assert (last.old_status, last.new_status, last.actor) == ("quarantined", "processed", ORGANISER)
    with pytest.raises(RsvpError, match="only quarantined messages are dismissed"):
        dismiss_quarantined(db, row.id, reason="again", actor=ORGANISER)


def test_dismiss_needs_a_reason_and_a_quarantined_message(db: Session, clock: ManualClock) -> None:
    row = quarantined(db)
    with pytest.raises(RsvpError, match="reason is required"):
        dismiss_quarantined(db, row.id, reason="  ", actor=ORGANISER)
    with pytest.raises(NotFound, match="no inbound message 424242"):
        dismiss_quarantined(db, 424242, reason="x", actor=ORGANISER)
    w = World(db, clock)
    inbound = w.tell(w.invitee(), ReplyKind.UNCLEAR)
    assert inbound.status is InboundStatus.REVIEW
    with pytest.raises(RsvpError, match=f"review resolve {inbound.id}"):
        dismiss_quarantined(db, inbound.id, reason="x", actor=ORGANISER)


# --------------------------------------------------------------------------- the commands

runner = CliRunner()


@pytest.fixture
def cli(db: Session, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal: nothing may fold

    def run(*args: str) -> Result:
        db.rollback()  # on SQLite the test's transaction would hold the write lock
        return runner.invoke(app, ["--database-url", database_url, *args])

    yield run


def test_cli_answer(cli: Any, db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=1)
    p = w.invitee("Anna de Groot-Verhoeven")
    result = cli(
        "answer", w.event.slug, p.person.email.upper(), "--as", "accept", "--session", "wonen",
        "--by", "marieke", "--note", "telefonisch",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"accept recorded for Anna de Groot-Verhoeven <{p.person.email}> by organiser:marieke: "
        "invited → registered (deelsessie wonen)"
    )
    assert f"  mail queued: registration_confirmed to {p.person.email}" in lines
    assert w.status(p) is P.REGISTERED

    late = w.invitee()
    waiting = cli("answer", w.event.slug, late.person.email, "--as", "accept", "--by", "m")
    assert waiting.exit_code == 0, waiting.output
    assert "NOT registered: on the waitlist at position 1: no room" in waiting.stdout

    unknown = one_line_error(cli("answer", w.event.slug, p.person.email, "--as", "accept",
                                 "--session", "zorg"))  # fmt: skip
    assert "its deelsessies: onderwijs, werk, wonen, veiligheid" in unknown
    stranger = one_line_error(cli("answer", w.event.slug, "x@y.example", "--as", "decline"))
    assert f"x@y.example is not invited to {w.event.slug}" in stranger
    bad = one_line_error(cli("answer", w.event.slug, p.person.email, "--as", "accept",
                             "--companion", "Karin <geen-adres>"))  # fmt: skip
    assert "no valid e-mail address" in bad
    cancel = cli("answer", w.event.slug, p.person.email, "--as", "cancel", "--by", "m")
    assert cancel.exit_code == 0, cancel.output
    assert "registered → cancelled" in cancel.stdout
    assert f"mail queued: seat_offered to {late.person.email}" in cancel.stdout


def test_cli_offer_shows_the_time_with_its_zone(cli: Any, db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=1)
    [first] = fill(w, 1)
    a = w.invitee()
    w.tell(a, ACCEPT)
    clock.set(w.event.registration_deadline + timedelta(hours=1))
    w.tell(first, DECLINE)
    result = cli("offer", w.event.slug, a.person.email, "--by", "marieke")
    assert result.exit_code == 0, result.output
    until = w.event.registration_deadline + timedelta(hours=1 + w.event.offer_expiry_hours)
    local = until.astimezone(event_config().tz)
    assert f"they can accept until {local:%Y-%m-%d %H:%M} CET" in result.stdout
    assert f"mail queued: seat_offered to {a.person.email}" in result.stdout
    again = one_line_error(cli("offer", w.event.slug, a.person.email))
    assert "already has an open offer (until" in again and "CET)" in again


def test_cli_inbox_dismiss(cli: Any, db: Session, clock: ManualClock) -> None:
    row = quarantined(db, headers_only=True)
    listing = cli("inbox", "quarantine")
    assert listing.exit_code == 0, listing.output
    assert "exceeds max_message_bytes" in listing.stdout
    assert "rsvpmail inbox dismiss ID --reason TEXT" in listing.stdout
    assert f"{row.received_at:%Y-%m-%d %H:%M} UTC" in listing.stdout  # no event at all: UTC
    # Too large to read again: release is refused, so only dismiss is offered for it.
    assert "only dismiss: read it in folder Quarantine on the mail server" in listing.stdout
    assert f"rsvpmail inbox release {row.id}" not in listing.stdout
    release = one_line_error(cli("inbox", "release", str(row.id)))
    assert f"rsvpmail inbox dismiss {row.id} --reason" in release

    missing = cli("inbox", "dismiss", str(row.id))
    assert missing.exit_code == 2 and "--reason" in missing.output
    done = cli("inbox", "dismiss", str(row.id), "--reason", "answered by phone", "--by", "marieke")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == (
        f"message {row.id} dismissed: now processed "
        "(dismissed by organiser:marieke: answered by phone)"
    )
    assert "no quarantined messages" in cli("inbox", "quarantine").stdout
    shown = cli("inbox", "show", str(row.id))
    assert "resolution: dismissed by organiser:marieke: answered by phone" in shown.stdout
    assert "quarantined → processed by organiser:marieke" in shown.stdout
    again = one_line_error(cli("inbox", "dismiss", str(row.id), "--reason", "x"))
    assert "only quarantined messages are dismissed" in again


def test_cli_inbox_show_prints_mail_text_as_it_is(
    cli: Any, db: Session, clock: ManualClock
) -> None:
    raw = reply(to_token=None, from_="a@b.example", text="x", subject="[bold]Aanmelding[/] " * 8)
    row, _ = record_inbound(db, raw, mailbox="INBOX", uidvalidity=1, uid=9)
    transition(db, row, InboundStatus.QUARANTINED, reason="test", inbound_message_id=row.id)
    db.commit()
    shown = cli("inbox", "show", str(row.id))
    assert shown.exit_code == 0, shown.output
    assert "subject: Re: " + ("[bold]Aanmelding[/] " * 8).strip() in shown.stdout  # one line
    listing = cli("inbox", "quarantine")
    assert listing.exit_code == 0, listing.output
    assert "[bold]Aanmelding[/]" in listing.stdout


def test_cli_inbox_read_prints_json_on_one_line(
    cli: Any, monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    from jobs import imap_reader
    from jobs.commands import inbox

    report = imap_reader.ReadReport(fetched=123456789, processed=123456789, review=123456789)
    monkeypatch.setattr(imap_reader, "run_once", lambda *_a, **_k: report)
    monkeypatch.setattr(inbox, "settings_for", lambda *_a: type("S", (), {"imap": None})())
    monkeypatch.setattr(inbox, "configure_logging", lambda *_a: None)
    result = cli("inbox", "read", "--once")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert json.loads(line) == dataclasses.asdict(report)


# --------------------------------------------------------------------------- the mailbox


@pytest.mark.integration
def test_a_dismissed_oversized_message_leaves_the_quarantine_folder_too(
    mailstack: Any,
    database_url: str,
    sessions: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    mail_address: Any,
) -> None:
    """The user's walk-through: an oversized message could be neither released nor resolved."""
    from jobs.settings import ImapSettings
    from tests import replygen
    from tests.conftest import EVENT_TOML, INVITEES_CSV
    from tests.test_imap_reader import Cli, _config, append, assert_server_matches_db, on_server
    from workflows.event_config import load_event_config
    from workflows.events import apply_event_config
    from workflows.invitees import import_invitees, parse_invitee_csv

    with sessions() as db, db.begin():
        event, _ = apply_event_config(db, load_event_config(EVENT_TOML))
        import_invitees(db, event, parse_invitee_csv(INVITEES_CSV.read_bytes()))
        db.flush()
        invitees = replygen.invitees_of(db, event)
    monkeypatch.setenv("DEVMAIL_PASSWORD", mailstack.password)
    imap = ImapSettings(
        host=mailstack.imap_host,
        port=mailstack.imap_port,
        user=mail_address("aanmelden", "wijkwijzer.example"),
        password=mailstack.password,
        timeout=10,
        max_message_bytes=20_000,
    )
    config = str(_config(tmp_path, imap, max_message_bytes=imap.max_message_bytes))
    cli = Cli(database_url)
    append(mailstack, imap, [replygen.oversized(invitees[1], 1, 40_000)])
    first = cli("inbox", "read", "--once", "--config", config)
    assert first.exit_code == 0 and '"oversized": 1' in first.output, first.output
    with sessions() as db:
        row = db.scalars(select(InboundMessage)).one()
    assert row.status is InboundStatus.QUARANTINED
    assert len(on_server(mailstack, imap, imap.quarantine_folder)) == 1

    done = cli("inbox", "dismiss", str(row.id), "--reason", "read it; she called", "--by", "m")
    assert done.exit_code == 0, done.output
    again = cli("inbox", "read", "--once", "--config", config)
    assert again.exit_code == 0 and '"moves_finished": 1' in again.output, again.output
    assert on_server(mailstack, imap, imap.quarantine_folder) == []
    assert_server_matches_db(mailstack, imap, sessions)
