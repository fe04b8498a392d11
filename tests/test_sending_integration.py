"""The outbox sender against the real local mail stack (aiosmtpd → Dovecot), on both DBs.

Invitation batches are rendered by mail_templates, sent over SMTP by jobs.smtp_sender and
read back over IMAP. Crashes are real: a worker process is SIGKILLed after the server
accepted a mail and before it recorded that.
"""

from __future__ import annotations

import email
import email.policy
import os
import select as select_module
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    AuditEntry,
    Event,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Person,
)
from devmail import MailStack
from jobs.settings import ImapSettings, ServiceSettings, SmtpSettings
from jobs.smtp_sender import send_due
from tests.factories import make_event, make_person
from workflows import clock
from workflows.invitations import queue_invitations
from workflows.invitees import add_invitation
from workflows.tokens import calendar_uid, plus_address, text_marker

# Lets this module run on its own; harmless once tests/conftest.py loads the plugin too.

pytestmark = pytest.mark.integration

AddressFactory = Callable[..., str]


def _settings(stack: MailStack, **smtp: object) -> ServiceSettings:
    return ServiceSettings(
        smtp=replace(SmtpSettings(host=stack.smtp_host, port=stack.smtp_port, timeout=10), **smtp)
    )


def _invite_many(
    sessions: sessionmaker[Session], mail_address: AddressFactory, count: int, **event: object
) -> tuple[int, list[str]]:
    """An event (replies to a mailbox of this test's own) and `count` pending invitations."""
    addresses = [mail_address(f"wethouder{i}", f"gemeente{i % 5}.example") for i in range(count)]
    with sessions() as db, db.begin():
        cfg_event = make_event(db, reply_address=mail_address("aanmelden"), **event)
        for i, address in enumerate(addresses):
            person = make_person(db, address, f"Wethouder {i}")
            add_invitation(db, cfg_event, person, batch="eerste-ronde", reason="test setup")
        return cfg_event.id, addresses


def _queue_all(sessions: sessionmaker[Session], event_id: int) -> int:
    with sessions() as db, db.begin():
        return len(queue_invitations(db, db.get_one(Event, event_id), batch=None, only=None))


def _accepted(stack: MailStack) -> Counter[tuple[str | None, str]]:
    """(Message-ID, recipient) of every accepted mail; IDs alone repeat across test DBs."""
    return Counter(
        (m.message_id, rcpt.lower()) for m in stack.smtp.snapshot() for rcpt in m.rcpt_tos
    )


def _outbox(sessions: sessionmaker[Session]) -> list[OutboundMessage]:
    with sessions() as db:
        return list(db.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def _invitation_statuses(sessions: sessionmaker[Session]) -> Counter[InvitationStatus]:
    with sessions() as db:
        return Counter(db.scalars(select(Invitation.status)))


@pytest.fixture
def restore_clock() -> Iterator[None]:
    previous = clock.set_clock(clock.system_clock)
    yield
    clock.set_clock(previous)


def _clock_ahead(delta: timedelta) -> None:
    clock.set_clock(lambda: datetime.now(UTC) + delta)


# ------------------------------------------------------------------------ a whole batch


def test_a_batch_of_200_invitations_arrives_and_is_not_sent_twice(
    sessions: sessionmaker[Session], mailstack: MailStack, mail_address: AddressFactory
) -> None:
    event_id, addresses = _invite_many(sessions, mail_address, 200)
    assert _queue_all(sessions, event_id) == 200
    before = len(mailstack.smtp.snapshot())

    report = send_due(sessions, _settings(mailstack))

    assert (report.sent, report.retried, report.failed) == (200, 0, 0)
    assert _invitation_statuses(sessions) == {InvitationStatus.SENT: 200}
    with sessions() as db:
        event = db.get_one(Event, event_id)
        tokens = dict(
            db.execute(select(Person.email, Invitation.token).join(Invitation.person)).all()
        )
        bounce_to = event.reply_address.replace("@", "+bounces@")
        starts_at = event.starts_at
        reply_address = event.reply_address
    for address in addresses:
        with mailstack.mailbox(address) as box:
            messages = list(box.fetch(mark_seen=False))
        assert len(messages) == 1, address
        # Re-parse with the modern policy (imap-tools hands out compat32 messages).
        msg = email.message_from_bytes(messages[0].obj.as_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        _check_invitation(msg, address, tokens[address], reply_address, starts_at)
        assert msg["Return-Path"] in (f"<{bounce_to}>", None)

    # Running the batch and the sender again sends nothing more.
    assert _queue_all(sessions, event_id) == 0
    again = send_due(sessions, _settings(mailstack))
    assert again.handled == 0
    assert len(mailstack.smtp.snapshot()) - before == 200


def _check_invitation(
    msg: EmailMessage, address: str, token: str, reply_address: str, starts_at: datetime
) -> None:
    assert address in str(msg["To"]).lower()
    assert plus_address(reply_address, token) in str(msg["Reply-To"])
    assert text_marker(token) in str(msg["Subject"]).replace("\n ", " ")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"]
    types = [part.get_content_type() for part in msg.walk()]
    assert {"text/plain", "text/html", "text/calendar"} <= set(types)
    text = msg.get_body(preferencelist=("plain",))
    assert text is not None and text_marker(token) in str(text.get_content()).replace("\n", "")
    calendar_part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    assert calendar_part.get_param("method") == "REQUEST"
    calendar = Calendar.from_ical(calendar_part.get_payload(decode=True))
    [vevent] = calendar.walk("VEVENT")
    assert str(vevent["UID"]) == calendar_uid(token)
    assert vevent.decoded("DTSTART").astimezone(UTC) == starts_at


# ------------------------------------------------------------------------------ crashes


def crash_after_accepting(
    database_url: str, host: str, port: int, accepted_before_crash: int
) -> None:
    """Child process: send; after the n-th accepted mail, hang before recording it."""
    from db.engine import make_engine, make_sessionmaker

    factory = make_sessionmaker(make_engine(database_url))
    settings = ServiceSettings(
        smtp=SmtpSettings(host=host, port=port, timeout=10, lease_seconds=2.0)
    )
    accepted = 0

    def hang_at_the_worst_moment(_mail: object) -> None:
        nonlocal accepted
        accepted += 1
        if accepted == accepted_before_crash:
            print("accepted", flush=True)
            time.sleep(3600)  # the parent kills us here

    send_due(factory, settings, worker="doomed", on_accepted=hang_at_the_worst_moment)


def test_a_worker_killed_after_acceptance_costs_one_duplicate_and_loses_nothing(
    database_url: str,
    sessions: sessionmaker[Session],
    mailstack: MailStack,
    mail_address: AddressFactory,
    restore_clock: None,
) -> None:
    event_id, addresses = _invite_many(sessions, mail_address, 6)
    _queue_all(sessions, event_id)
    code = (
        "from tests.test_sending_integration import crash_after_accepting; "
        f"crash_after_accepting({database_url!r}, {mailstack.smtp_host!r}, "
        f"{mailstack.smtp_port}, 3)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        ready, _, _ = select_module.select([child.stdout], [], [], 60)
        assert ready, "the worker never reached its third accepted mail"
        assert child.stdout is not None and child.stdout.readline().strip() == "accepted"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    rows = _outbox(sessions)
    mails = {(r.message_id, r.recipient) for r in rows}
    assert sum(_accepted(mailstack)[m] for m in mails) == 3
    # Two acceptances were recorded (settling them was still to come), the third was not.
    assert all(r.status == OutboundStatus.SENDING for r in rows)
    assert sum(r.sent_at is not None for r in rows) == 2

    _clock_ahead(timedelta(minutes=1))  # the dead worker's lease (2 s) has long expired
    report = send_due(sessions, _settings(mailstack))

    assert report.sent == 4  # the one in flight again, and the three never sent
    accepted = _accepted(mailstack)
    copies = sorted(accepted[m] for m in mails)
    assert copies == [1, 1, 1, 1, 1, 2]  # exactly the one in flight was sent twice
    assert all(r.status == OutboundStatus.SENT for r in _outbox(sessions))
    assert _invitation_statuses(sessions) == {InvitationStatus.SENT: 6}
    for address in addresses:
        assert mailstack.message_count(address) >= 1


# --------------------------------------------------------------------- server answers


def test_a_451_is_retried_later_and_delivered(
    sessions: sessionmaker[Session],
    mailstack: MailStack,
    mail_address: AddressFactory,
    restore_clock: None,
) -> None:
    event_id, [address] = _invite_many(sessions, mail_address, 1)
    _queue_all(sessions, event_id)
    mailstack.smtp.fail_next(1, 451)

    first = send_due(sessions, _settings(mailstack))
    [row] = _outbox(sessions)

    assert (first.sent, first.retried) == (0, 1)
    assert row.status == OutboundStatus.PENDING and row.attempts == 1
    assert (row.last_error or "").startswith("451")
    assert send_due(sessions, _settings(mailstack)).handled == 0  # not due yet

    _clock_ahead(timedelta(minutes=2))
    second = send_due(sessions, _settings(mailstack))

    assert second.sent == 1
    [row] = _outbox(sessions)
    assert row.status == OutboundStatus.SENT and row.attempts == 2
    assert mailstack.message_count(address) == 1
    assert _invitation_statuses(sessions) == {InvitationStatus.SENT: 1}


def test_a_550_ends_as_failed_with_the_reason(
    sessions: sessionmaker[Session], mailstack: MailStack, mail_address: AddressFactory
) -> None:
    event_id, [rejected, fine] = _invite_many(sessions, mail_address, 2)
    _queue_all(sessions, event_id)
    mailstack.smtp.reject_recipient(rejected, 550, "5.1.1 No such user here")

    report = send_due(sessions, _settings(mailstack))

    assert (report.sent, report.failed) == (1, 1)
    by_recipient = {r.recipient: r for r in _outbox(sessions)}
    assert by_recipient[rejected].status == OutboundStatus.FAILED
    assert by_recipient[rejected].last_error == "550 5.1.1 No such user here"
    assert by_recipient[fine].status == OutboundStatus.SENT
    with sessions() as db:
        invitations = {i.person.email: i for i in db.scalars(select(Invitation))}
        assert invitations[rejected].status == InvitationStatus.UNDELIVERABLE
        assert invitations[rejected].bounce_reason == "550 5.1.1 No such user here"
    assert mailstack.message_count(fine) == 1


def test_sent_mail_is_filed_in_the_sent_folder(
    sessions: sessionmaker[Session], mailstack: MailStack, mail_address: AddressFactory
) -> None:
    event_id, _ = _invite_many(sessions, mail_address, 2)
    _queue_all(sessions, event_id)
    organiser = mail_address("organisator")
    imap = ImapSettings(
        host=mailstack.imap_host,
        port=mailstack.imap_port,
        user=organiser,
        password=mailstack.password,
        sent_folder="Verzonden",
        timeout=10,
    )
    settings = replace(_settings(mailstack), imap=imap)

    assert send_due(sessions, settings).sent == 2

    assert mailstack.message_count(organiser, "Verzonden") == 2


# --------------------------------------------------------------------------- rate limit


def test_the_rate_limit_holds_with_two_workers(
    sessions: sessionmaker[Session],
    mailstack: MailStack,
    mail_address: AddressFactory,
    restore_clock: None,
) -> None:
    """Two workers share a 60/min limit; the clock runs 15× fast so minutes take 4 s."""
    import threading

    per_minute, speed, count = 60, 15.0, 100
    event_id, _ = _invite_many(sessions, mail_address, count)
    _queue_all(sessions, event_id)
    mailstack.smtp.store_messages = False  # this measures pacing, not Dovecot
    clock.set_clock(clock.AcceleratedClock(datetime.now(UTC), speed))
    settings = _settings(mailstack, rate_limit_per_minute=float(per_minute), batch_size=3)
    reports = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            reports[name] = send_due(
                sessions, settings, worker=name, sleep=lambda s: time.sleep(s / speed)
            )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors
    assert sum(r.sent for r in reports.values()) == count
    assert all(r.sent > 0 for r in reports.values())  # both really sent
    with sessions() as db:
        claimed_at = sorted(
            db.scalars(
                select(AuditEntry.at).where(
                    AuditEntry.machine == "outbound", AuditEntry.new_status == "sending"
                )
            )
        )
    sent_at = sorted(r.sent_at for r in _outbox(sessions) if r.sent_at is not None)
    # Tokens are taken right before a claim: the limiter itself holds exactly.
    assert _most_in_a_minute(claimed_at) <= per_minute
    # The server sees each mail a few milliseconds after its claim; the 15× clock turns
    # that into a fraction of a simulated second, worth at most a token at 0.9 per second.
    assert _most_in_a_minute(sent_at) <= per_minute + 1
    # ... and it did not throttle far below the limit either.
    minutes = (sent_at[-1] - sent_at[0]).total_seconds() / 60
    assert count / minutes > 0.75 * per_minute


def _most_in_a_minute(moments: list[datetime]) -> int:
    """The largest number of `moments` (sorted) in any window of one minute."""
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moments[first] <= moment - timedelta(minutes=1):
            first += 1
        most = max(most, last - first + 1)
    return most
