"""Several `rsvpmail serve` processes on one database.

PostgreSQL: two real processes share the work; only the holder of the reader lock reads
the mailbox. The reader is killed with SIGKILL while replies arrive and mail goes out; the
survivor takes the mailbox over within seconds, every reply is applied exactly once, and
no mail goes out twice except at most the one the killed process had in flight.

SQLite: one instance per database file; a second one refuses to start, in one line.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    AuditEntry,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
)
from devmail import MailStack
from tests.test_service_ops import (
    Serve,
    cli_env,
    future_event,
    invite_people,
    log_time,
    outbox_statuses,
    send_reply,
    sent_mail,
    wait_until,
    write_config,
)
from workflows.invitations import queue_invitations

pytestmark = pytest.mark.integration

ORGANISER = "aanmelden@wijkwijzer.example"
SESSIONS = ("onderwijs", "werk", "wonen", "veiligheid")
INVITEES = 30
KILL_AFTER_REPLIES = 12
TAKEOVER_SECONDS = 5.0


def _answer(number: int) -> str:
    if number % 5 == 4:
        return "Helaas kan ik er die dag niet bij zijn."
    return f"Ja, ik kom graag. Deelsessie {SESSIONS[number % len(SESSIONS)]}."


def _read_lines(serve: Serve) -> list[str]:
    return [line for line in serve.lines() if 'msg="message read"' in line]


def _inbound_done(sessions: sessionmaker[Session], expected: int) -> bool:
    with sessions() as db:
        statuses = Counter(db.scalars(select(InboundMessage.status)))
    return sum(statuses.values()) == expected and statuses[InboundStatus.RECEIVED] == 0


def _outbox_done(sessions: sessionmaker[Session]) -> bool:
    statuses = outbox_statuses(sessions)
    return statuses[OutboundStatus.PENDING] == 0 and statuses[OutboundStatus.SENDING] == 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_instances_share_the_work_and_survive_a_kill_9(
    database_url: str,
    sessions: sessionmaker[Session],
    fresh_mailstack: MailStack,
    tmp_path: Path,
) -> None:
    stack = fresh_mailstack
    addresses = [f"wethouder{i}@gemeente{i}.example" for i in range(INVITEES)]
    with sessions() as db, db.begin():
        event = future_event(db, ORGANISER, capacity=10)
        invite_people(db, event, addresses)
        queue_invitations(db, event, batch="eerste-ronde")
    config = write_config(
        tmp_path / "rsvpmail.toml", stack, ORGANISER, database_url=database_url,
        smtp={"lease_seconds": 5, "batch_size": 10},
    )  # fmt: skip
    env = cli_env(stack)
    first = Serve(config, env, tmp_path / "first.log")
    second: Serve | None = None
    try:
        first.wait_for("reader lock taken")
        second = Serve(config, env, tmp_path / "second.log")
        second.wait_for("service started")
        wait_until(lambda: set(outbox_statuses(sessions)) == {OutboundStatus.SENT}, 60,
                   "the invitations to go out")  # fmt: skip

        reply_ids: list[str] = []
        killed_at = 0.0
        for number, address in enumerate(addresses):
            reply_ids.append(send_reply(stack, address, f"Wethouder {number}", "invitation",
                                        _answer(number)))  # fmt: skip
            if number + 1 == KILL_AFTER_REPLIES:
                wait_until(lambda: len(_read_lines(first)) >= 3, 20, "the reader to be busy")
                first.kill()
                killed_at = time.time()
            time.sleep(0.05)

        taken = second.wait_for("reader lock taken", timeout=TAKEOVER_SECONDS + 5)
        wait_until(lambda: _inbound_done(sessions, INVITEES), 60, "every reply to be applied")
        wait_until(lambda: _outbox_done(sessions), 60, "every answer to be sent")
        assert second.terminate() == 0, "\n".join(second.lines()[-20:])
    finally:
        first.stop_quietly()
        if second is not None:
            second.stop_quietly()

    # The survivor took the mailbox over within seconds of the kill, and before it only the
    # first instance read: the two never read at the same time.
    took_over_at = log_time(taken)
    assert killed_at < took_over_at < killed_at + TAKEOVER_SECONDS
    assert sum("reader lock taken" in line for line in second.lines()) == 1
    first_reads, second_reads = _read_lines(first), _read_lines(second)
    assert first_reads and second_reads
    assert all(log_time(line) < killed_at for line in first_reads)
    assert all(log_time(line) >= took_over_at for line in second_reads)

    # Every reply recorded once and applied once.
    with sessions() as db:
        inbound = db.execute(select(InboundMessage.id, InboundMessage.message_id)).all()
        applied = Counter(db.scalars(select(AuditEntry.entity_id).where(
            AuditEntry.machine == "inbound", AuditEntry.old_status == InboundStatus.RECEIVED.value,
        )))  # fmt: skip
        registered = db.scalar(select(func.count()).select_from(Participant).where(
            Participant.status == ParticipantStatus.REGISTERED))  # fmt: skip
        outbound = db.execute(
            select(OutboundMessage.message_id, OutboundMessage.recipient, OutboundMessage.status)
        ).all()
    assert sorted(mid for _, mid in inbound) == sorted(reply_ids)
    assert applied == {row_id: 1 for row_id, _ in inbound}
    assert registered == 10

    # Every mail went out; at most one of them twice (the one the killed process had in hand).
    assert {status for *_, status in outbound} == {OutboundStatus.SENT}
    accepted = sent_mail(stack, "wijkwijzer.example")
    for message_id, recipient, _ in outbound:
        assert accepted[(message_id, recipient.lower())] >= 1, f"{message_id} never sent"
    assert sum(count - 1 for count in accepted.values()) <= 1, accepted.most_common(3)
    assert stack.message_count(ORGANISER) == 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_second_instance_on_one_sqlite_file_refuses_in_one_line(
    database_url: str, mailstack: MailStack, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "rsvpmail.toml", mailstack, "aanmelden@refuse.example",
                          database_url=database_url)  # fmt: skip
    env = cli_env(mailstack)
    first = Serve(config, env, tmp_path / "first.log")
    try:
        first.wait_for("service started")
        database = database_url.removeprefix("sqlite:///")
        for extra in ((), ("--once",)):
            second = Serve(config, env, tmp_path / f"second{len(extra)}.log", extra)
            assert second.wait(60) == 2
            lines = second.lines()
            assert len(lines) == 1, lines
            assert lines[0].startswith(
                f"error: another rsvpmail instance (pid {first.pid}) is using {database}; "
                "SQLite allows one instance per database file"
            ), lines[0]
        assert first.terminate() == 0
    finally:
        first.stop_quietly()
