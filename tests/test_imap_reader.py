"""The IMAP reader against a real Dovecot (devmail), on SQLite and on PostgreSQL.

Every test logs in as a mailbox of its own on the shared session stack, so it starts empty.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from db.models import AuditEntry, InboundMessage, InboundStatus, MailboxState
from devmail import MailStack
from jobs.cli import app as cli_app
from jobs.imap_reader import (
    Pipeline,
    default_pipeline,
    parse_fetch_response,
    run_forever,
    run_once,
)
from jobs.settings import ImapSettings
from tests import replygen
from tests.conftest import EVENT_TOML, INVITEES_CSV, REPO
from workflows.event_config import load_event_config
from workflows.events import apply_event_config
from workflows.invitees import import_invitees, parse_invitee_csv

# Lets this module run on its own; harmless once tests/conftest.py loads the plugin too.

DECIDED = (InboundStatus.PROCESSED, InboundStatus.REVIEW, InboundStatus.QUARANTINED)


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def invitees(sessions: sessionmaker[Session]) -> list[replygen.Invitee]:
    """The real example event with its real invitee list."""
    with sessions() as db, db.begin():
        event, _ = apply_event_config(db, load_event_config(EVENT_TOML))
        import_invitees(db, event, parse_invitee_csv(INVITEES_CSV.read_bytes()))
        db.flush()
        return replygen.invitees_of(db, event)


@pytest.fixture
def imap(mailstack: MailStack, mail_address: Callable[..., str]) -> ImapSettings:
    """Settings for an empty mailbox of this test's own."""
    return ImapSettings(
        host=mailstack.imap_host,
        port=mailstack.imap_port,
        user=mail_address("aanmelden", "wijkwijzer.example"),
        password=mailstack.password,
        timeout=10,
        batch_size=20,
    )


@dataclass(frozen=True)
class ServerMessage:
    uid: int
    message_id: str
    seen: bool


def append(
    stack: MailStack, imap: ImapSettings, raws: Sequence[bytes], folder: str = "INBOX"
) -> None:
    with stack.mailbox(imap.user) as box:
        if not box.folder.exists(folder):
            box.folder.create(folder)
        for raw in raws:
            box.append(raw, folder)


def on_server(stack: MailStack, imap: ImapSettings, folder: str) -> list[ServerMessage]:
    with stack.mailbox(imap.user) as box:
        if not box.folder.exists(folder):
            return []
        box.folder.set(folder, readonly=True)
        return [
            ServerMessage(int(m.uid or 0), _message_id(m.headers), "\\Seen" in m.flags)
            for m in box.fetch(mark_seen=False, headers_only=True, bulk=500)
        ]


def _message_id(headers: Mapping[str, tuple[str, ...]]) -> str:
    values = headers.get("message-id", ())
    return values[0].strip() if values else ""


def rows(sessions: sessionmaker[Session]) -> list[InboundMessage]:
    with sessions() as db:
        return list(db.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def decisions_per_row(sessions: sessionmaker[Session]) -> Counter[int]:
    """How often each inbound row left `received` (must be exactly once)."""
    with sessions() as db:
        entity_ids = db.scalars(
            select(AuditEntry.entity_id).where(
                AuditEntry.machine == "inbound", AuditEntry.old_status == "received"
            )
        ).all()
    return Counter(entity_ids)


def folder_of(imap: ImapSettings, status: InboundStatus) -> str:
    return {
        InboundStatus.PROCESSED: imap.processed_folder,
        InboundStatus.REVIEW: imap.review_folder,
        InboundStatus.QUARANTINED: imap.quarantine_folder,
    }[status]


def assert_server_matches_db(
    stack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session]
) -> None:
    """INBOX empty; every row's message in the folder of its status, once; nothing else."""
    assert on_server(stack, imap, imap.folder) == []
    # Compared by the Message-ID header of the stored bytes: "" for mail without one (its row
    # carries a synthesised id).
    expected = {
        folder_of(imap, status): sorted(
            _header(r.raw or b"", "Message-ID") for r in rows(sessions) if r.status is status
        )
        for status in DECIDED
    }
    actual = {
        folder: sorted(m.message_id for m in on_server(stack, imap, folder)) for folder in expected
    }
    assert actual == expected
    assert all(r.server_folder == folder_of(imap, r.status) for r in rows(sessions))
    assert all(r.moved_at is not None for r in rows(sessions))


def simple_reply(invitee: replygen.Invitee, text: str, subject_extra: str = "") -> bytes:
    from email.message import EmailMessage

    from workflows.tokens import plus_address, text_marker

    msg = EmailMessage()
    msg["From"] = f"{invitee.name} <{invitee.email}>"
    msg["To"] = plus_address("aanmelden@wijkwijzer.example", invitee.token)
    msg["Subject"] = f"Re: Uitnodiging [{text_marker(invitee.token)}]{subject_extra}"
    msg["Message-ID"] = make_msgid(domain=invitee.email.split("@")[1])
    msg.set_content(text)
    return msg.as_bytes()


# -- pure helpers -----------------------------------------------------------------------


def test_fetch_response_parsing_finds_uid_before_or_after_the_literal() -> None:
    data: list[bytes | tuple[bytes, bytes] | None] = [
        (b"1 (UID 7 RFC822.SIZE 5 BODY[] {5}", b"hello"),
        b")",
        (b"2 (BODY[] {3}", b"abc"),
        b" UID 9 RFC822.SIZE 3)",
        b"3 (UID 11 RFC822.SIZE 42)",
        b"4 (FLAGS (\\Seen))",  # unsolicited flag update: no UID, ignored
    ]
    assert parse_fetch_response(data) == [(7, 5, b"hello"), (9, 3, b"abc"), (11, 42, None)]


# -- reading ----------------------------------------------------------------------------


@pytest.mark.integration
def test_reads_new_mail_incrementally_by_uid(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee],
) -> None:  # fmt: skip
    append(mailstack, imap, list(replygen.replies(invitees, 5, seed=1)))
    first = run_once(sessions, imap)
    assert first.fetched == 5
    with sessions() as db:
        state = db.get_one(MailboxState, imap.folder)
        first_last_uid = state.last_uid
    with mailstack.mailbox(imap.user) as box:
        uidvalidity = box.folder.status(imap.folder, ["UIDVALIDITY"])["UIDVALIDITY"]
    assert state.uidvalidity == uidvalidity
    assert first_last_uid == 5

    append(mailstack, imap, list(replygen.replies(invitees, 3, seed=2, start=100)))
    second = run_once(sessions, imap)
    assert second.fetched == 3  # only the new ones, not the five before
    assert run_once(sessions, imap).fetched == 0
    with sessions() as db:
        assert db.get_one(MailboxState, imap.folder).last_uid == 8
    assert len(rows(sessions)) == 8
    assert set(decisions_per_row(sessions).values()) == {1}
    assert [r.uid for r in rows(sessions)] == list(range(1, 9))


@pytest.mark.integration
def test_files_each_message_by_status_without_marking_it_seen(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee],
) -> None:  # fmt: skip
    accept = simple_reply(invitees[0], "Ja, ik kom graag, deelsessie wonen.")
    question = simple_reply(invitees[1], "Is er parkeergelegenheid bij het Huis van de Wijk?")
    append(mailstack, imap, [accept, question, replygen.garbage(7)])
    report = run_once(sessions, imap)

    assert report.fetched == 3
    assert report.processed + report.review + report.quarantined == 3
    by_subject = {r.message_id: r for r in rows(sessions)}
    accepted = next(r for r in by_subject.values() if r.from_address == invitees[0].email)
    assert accepted.status is InboundStatus.PROCESSED
    assert_server_matches_db(mailstack, imap, sessions)
    for folder in (imap.processed_folder, imap.review_folder, imap.quarantine_folder):
        assert not any(m.seen for m in on_server(mailstack, imap, folder))


@pytest.mark.integration
def test_changed_uidvalidity_rescans_without_processing_twice(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee],
) -> None:  # fmt: skip
    imap = replace(imap, folder="Aanmeldingen")
    earlier = list(replygen.replies(invitees, 4, seed=3))
    append(mailstack, imap, earlier, folder=imap.folder)
    assert run_once(sessions, imap).fetched == 4

    # Recorded before a crash, never processed: the rescan must process it, once.
    leftover = simple_reply(invitees[5], "Ja, ik kom graag.")
    pipeline = default_pipeline()
    with sessions() as db, db.begin():
        pipeline.record(db, leftover, mailbox=imap.folder, uidvalidity=1, uid=99)

    # The folder is deleted and recreated (new UIDVALIDITY); the same mail comes back.
    with mailstack.mailbox(imap.user) as box:
        box.folder.set("INBOX")
        box.folder.delete(imap.folder)
    new = simple_reply(invitees[6], "Nee, helaas verhinderd.")
    append(mailstack, imap, [*earlier, leftover, new], folder=imap.folder)
    report = run_once(sessions, imap)

    assert report.uidvalidity_changes == 1
    assert report.fetched == 6
    assert report.duplicates == 4
    assert report.processed + report.review + report.quarantined == 2
    assert len(rows(sessions)) == 6
    assert set(decisions_per_row(sessions).values()) == {1}
    assert on_server(mailstack, imap, imap.folder) == []
    with mailstack.mailbox(imap.user) as box:
        uidvalidity = box.folder.status(imap.folder, ["UIDVALIDITY"])["UIDVALIDITY"]
    with sessions() as db:
        state = db.get_one(MailboxState, imap.folder)
        assert (state.uidvalidity, state.last_uid) == (uidvalidity, 6)


@pytest.mark.integration
def test_garbage_is_never_applied_and_the_loop_goes_on(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee],
) -> None:  # fmt: skip
    good = [simple_reply(invitees[i], "Ja, ik kom graag.") for i in range(2)]
    append(mailstack, imap, [good[0], replygen.garbage(1), replygen.garbage(2), good[1]])
    report = run_once(sessions, imap)

    assert report.fetched == 4
    stored = rows(sessions)
    assert len(stored) == 4
    assert [r.status for r in stored if r.from_address] == [InboundStatus.PROCESSED] * 2
    # Bytes that are no e-mail are kept for a human (review or quarantine), never applied.
    garbage_rows = [r for r in stored if not r.from_address]
    assert len(garbage_rows) == 2
    assert all(r.status in (InboundStatus.REVIEW, InboundStatus.QUARANTINED) for r in garbage_rows)
    assert all(r.raw is not None and r.raw.startswith(b"\xff\xfe garbage") for r in garbage_rows)
    assert_server_matches_db(mailstack, imap, sessions)


def _failing(pipeline: Pipeline, *, record: bool) -> Pipeline:
    """The real pipeline, except that messages saying "boom" make a step raise."""

    def process(db: Session, inbound: InboundMessage) -> InboundStatus:
        if inbound.raw and b"boom" in inbound.raw:
            raise ValueError("boom: the rules tripped over this message")
        return pipeline.process(db, inbound)

    def recorder(
        db: Session, raw: bytes, *, mailbox: str, uidvalidity: int | None, uid: int | None
    ) -> tuple[InboundMessage, bool]:
        if b"boom" in raw:
            raise ValueError("boom: cannot store this message")
        return pipeline.record(db, raw, mailbox=mailbox, uidvalidity=uidvalidity, uid=uid)

    return Pipeline(record=recorder if record else pipeline.record, process=process)


@pytest.mark.integration
def test_a_message_whose_processing_raises_is_quarantined_with_the_reason(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee],
) -> None:  # fmt: skip
    before = simple_reply(invitees[0], "Ja, ik kom graag.")
    bomb = simple_reply(invitees[1], "Ja, boom.")
    after = simple_reply(invitees[2], "Ja, ik kom graag.")
    append(mailstack, imap, [before, bomb, after])
    report = run_once(sessions, imap, pipeline=_failing(default_pipeline(), record=False))

    assert (report.fetched, report.quarantined, report.processed) == (3, 1, 2)
    stored = {r.from_address: r for r in rows(sessions)}
    failed = stored[invitees[1].email]
    assert failed.status is InboundStatus.QUARANTINED
    assert failed.error is not None and "boom: the rules tripped" in failed.error
    assert failed.raw is not None and b"Ja, boom." in failed.raw  # kept whole, to release later
    assert stored[invitees[2].email].status is InboundStatus.PROCESSED
    assert_server_matches_db(mailstack, imap, sessions)
    # Nothing the failed attempt did survived: only the quarantine decision is audited.
    with sessions() as db:
        reasons = db.scalars(
            select(AuditEntry.new_status).where(AuditEntry.inbound_message_id == failed.id)
        ).all()
    assert "quarantined" in reasons and "registered" not in reasons


@pytest.mark.integration
def test_a_message_that_cannot_even_be_stored_goes_to_quarantine_on_the_server(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee],
) -> None:  # fmt: skip
    bomb = simple_reply(invitees[1], "boom")
    after = simple_reply(invitees[2], "Ja, ik kom graag.")
    append(mailstack, imap, [bomb, after])
    report = run_once(sessions, imap, pipeline=_failing(default_pipeline(), record=True))

    assert (report.fetched, report.unrecorded, report.processed) == (2, 1, 1)
    assert [r.from_address for r in rows(sessions)] == [invitees[2].email]
    assert on_server(mailstack, imap, imap.folder) == []
    quarantined = on_server(mailstack, imap, imap.quarantine_folder)
    assert [m.message_id for m in quarantined] == [_header(bomb, "Message-ID")]
    with sessions() as db:
        assert db.get_one(MailboxState, imap.folder).last_uid == 2  # not read again


@pytest.mark.integration
def test_a_message_the_server_cannot_read_is_set_aside_and_the_rest_goes_on(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee], watcher: Callable[[ImapSettings], threading.Event],
) -> None:  # fmt: skip
    """Dovecot hangs up ("* BYE Internal error") when it cannot read a stored message."""
    replies = [simple_reply(invitees[i], "Ja, ik kom graag.") for i in range(3)]
    append(mailstack, imap, replies)
    unreadable_id = _header(replies[1], "Message-ID")
    maildir = mailstack.dovecot.mail_root / imap.user / "Maildir"
    stored = next(
        f for f in maildir.rglob("*") if f.is_file() and unreadable_id.encode() in f.read_bytes()
    )
    stored.chmod(0)
    try:
        watcher(replace(imap, poll_seconds=0.5))
        _wait_for_rows(sessions, 2, timeout=30)
        deadline = time.monotonic() + 30
        while mailstack.message_count(imap.user, imap.folder) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        # Wherever the server moved it meanwhile (Quarantine), make it readable again.
        for path in maildir.rglob("*"):
            if path.is_file() and path.stat().st_mode & 0o777 == 0:
                path.chmod(0o600)
    assert sorted(r.from_address for r in rows(sessions)) == sorted(
        [invitees[0].email, invitees[2].email]
    )
    assert all(r.status is InboundStatus.PROCESSED for r in rows(sessions))
    assert on_server(mailstack, imap, imap.folder) == []
    assert [m.message_id for m in on_server(mailstack, imap, imap.quarantine_folder)] == [
        unreadable_id
    ]


def _header(raw: bytes, name: str) -> str:
    from email.parser import BytesHeaderParser

    return str(BytesHeaderParser().parsebytes(raw)[name] or "").strip()


@pytest.mark.integration
def test_an_oversized_message_is_quarantined_with_only_its_headers_stored(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee],
) -> None:  # fmt: skip
    imap = replace(imap, max_message_bytes=20_000)
    big = replygen.oversized(invitees[0], 1, 60_000)
    small = simple_reply(invitees[1], "Ja, ik kom graag.")
    append(mailstack, imap, [big, small])
    report = run_once(sessions, imap)

    assert (report.fetched, report.oversized, report.quarantined) == (2, 1, 1)
    row = next(r for r in rows(sessions) if r.from_address == invitees[0].email)
    assert row.status is InboundStatus.QUARANTINED
    assert row.raw is not None and len(row.raw) < 2_000 and row.raw.endswith(b"\r\n\r\n")
    assert row.raw_size > 60_000  # the real size, as the server reported it
    assert row.error is not None and "max_message_bytes" in row.error
    assert_server_matches_db(mailstack, imap, sessions)


@pytest.mark.integration
def test_a_move_interrupted_by_a_crash_is_finished_at_the_next_start(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee],
) -> None:  # fmt: skip
    """State exactly as a reader killed between its commit and its move leaves it."""
    committed_not_moved = simple_reply(invitees[0], "Ja, ik kom graag.")
    moved_not_recorded = simple_reply(invitees[1], "Nee, helaas verhinderd.")
    append(mailstack, imap, [committed_not_moved, moved_not_recorded])
    with mailstack.mailbox(imap.user) as box:
        uidvalidity = box.folder.status("INBOX", ["UIDVALIDITY"])["UIDVALIDITY"]
    pipeline = default_pipeline()
    with sessions() as db, db.begin():
        for uid, raw in ((1, committed_not_moved), (2, moved_not_recorded)):
            row, _ = pipeline.record(db, raw, mailbox="INBOX", uidvalidity=uidvalidity, uid=uid)
            pipeline.process(db, row)
        db.add(MailboxState(mailbox="INBOX", uidvalidity=uidvalidity, last_uid=2))
    second_status = rows(sessions)[1].status
    with mailstack.mailbox(imap.user) as box:
        box.folder.create(folder_of(imap, second_status))
        box.move("2", folder_of(imap, second_status))

    report = run_once(sessions, imap)

    assert report.fetched == 0  # both lie at or below last_uid: nothing is read again
    assert report.moves_finished == 2
    assert set(decisions_per_row(sessions).values()) == {1}
    assert_server_matches_db(mailstack, imap, sessions)


# -- push mode --------------------------------------------------------------------------


@pytest.fixture
def watcher(
    imap: ImapSettings, sessions: sessionmaker[Session]
) -> Iterator[Callable[[ImapSettings], threading.Event]]:
    """Starts run_forever in a thread; returns its `waiting` event. Stopped at teardown."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(settings: ImapSettings) -> threading.Event:
        waiting = threading.Event()
        thread = threading.Thread(
            target=run_forever, args=(sessions, settings, stop),
            kwargs={"waiting": waiting}, daemon=True,
        )  # fmt: skip
        thread.start()
        threads.append(thread)
        return waiting

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
        assert not thread.is_alive(), "run_forever did not stop within 15 s of the stop event"


def _wait_for_rows(sessions: sessionmaker[Session], count: int, timeout: float) -> float:
    """Seconds until `count` inbound rows exist (decided); fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with sessions() as db:
            found = db.scalar(
                select(func.count(InboundMessage.id)).where(InboundMessage.status != "received")
            )
        if found is not None and found >= count:
            return time.monotonic() - started
        time.sleep(0.02)
    pytest.fail(f"{count} inbound rows did not appear within {timeout} s")


@pytest.mark.integration
def test_idle_records_a_reply_within_two_seconds(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee], watcher: Callable[[ImapSettings], threading.Event],
) -> None:  # fmt: skip
    # No poll backstop to help: only IDLE can explain a fast pick-up. Mail appended the
    # instant the reader goes back to waiting races with the start of IDLE: the server's
    # EXISTS may arrive together with its "+ idling" and must not be missed.
    waiting = watcher(replace(imap, idle=True, poll_seconds=600))
    with mailstack.mailbox(imap.user) as box:
        for n in range(12):
            assert waiting.wait(10), "the reader never started waiting for mail"
            waiting.clear()
            if n % 2:
                time.sleep(0.3)  # and some well after IDLE has started
            box.append(simple_reply(invitees[n], "Ja, ik kom graag."), "INBOX")
            latency = _wait_for_rows(sessions, n + 1, timeout=10)
            assert latency < 2.0, f"reply {n} recorded after {latency:.2f} s"
    assert_server_matches_db(mailstack, imap, sessions)


@pytest.mark.integration
def test_the_poll_backstop_reads_mail_without_idle(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee], watcher: Callable[[ImapSettings], threading.Event],
) -> None:  # fmt: skip
    waiting = watcher(replace(imap, idle=False, poll_seconds=0.5))
    assert waiting.wait(10)
    mailstack.deliver(simple_reply(invitees[0], "Ja, ik kom graag."), imap.user)
    assert _wait_for_rows(sessions, 1, timeout=5) < 5


# -- the command line -------------------------------------------------------------------


def _config(tmp_path: Path, imap: ImapSettings, **extra: object) -> Path:
    lines = [
        "[imap]",
        f'host = "{imap.host}"',
        f"port = {imap.port}",
        f'user = "{imap.user}"',
        'password_env = "DEVMAIL_PASSWORD"',
        f"batch_size = {imap.batch_size}",
        *(f"{key} = {value}" for key, value in extra.items()),
    ]
    path = tmp_path / "rsvpmail.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Cli:
    """`rsvpmail …` in-process, on this test's database."""

    def __init__(self, database_url: str) -> None:
        self.base = ["--database-url", database_url]
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        # `inbox read` points the root logger at the runner's stream, which closes after
        # the call; restore pytest's handlers so later log lines do not hit a closed file.
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            return self.runner.invoke(cli_app, [*self.base, *args])
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)


@pytest.mark.integration
def test_cli_read_list_show_and_release_quarantined_mail(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee], database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("DEVMAIL_PASSWORD", mailstack.password)
    imap = replace(imap, max_message_bytes=20_000)
    config = str(_config(tmp_path, imap, max_message_bytes=imap.max_message_bytes))
    cli = Cli(database_url)
    accept = simple_reply(invitees[0], "Ja, ik kom graag.")
    big = replygen.oversized(invitees[1], 1, 40_000)
    append(mailstack, imap, [accept, big])

    result = cli("inbox", "read", "--once", "--config", config)
    assert result.exit_code == 0, result.output
    assert '"fetched": 2' in result.output and '"oversized": 1' in result.output

    # A message the rules trip over (fault injected) is quarantined with the reason.
    bomb = simple_reply(invitees[2], "Ja, ik kom graag. boom")
    append(mailstack, imap, [bomb])
    run_once(sessions, imap, pipeline=_failing(default_pipeline(), record=False))
    by_sender = {r.from_address: r for r in rows(sessions)}
    accepted, too_big, failed = (by_sender[i.email] for i in invitees[:3])
    assert (too_big.status, failed.status) == (InboundStatus.QUARANTINED,) * 2

    listing = cli("inbox", "quarantine")
    assert listing.exit_code == 0, listing.output
    assert "2 quarantined message(s)" in listing.output
    assert "max_message_bytes" in listing.output and "boom: the rules tripped" in listing.output
    event_only = cli("inbox", "quarantine", "--event", "leren-van-rotterdam-zuid")
    assert event_only.exit_code == 0, event_only.output

    raw = cli("inbox", "show", str(failed.id), "--raw")
    assert raw.exit_code == 0
    assert raw.stdout_bytes == failed.raw
    shown = cli("inbox", "show", str(too_big.id))
    assert shown.exit_code == 0
    assert "quarantined" in shown.output and "only the headers are stored" in shown.output

    refused = cli("inbox", "release", str(accepted.id))
    assert refused.exit_code == 2 and "only quarantined messages" in refused.output
    refused = cli("inbox", "release", str(too_big.id))
    assert refused.exit_code == 2 and "only its headers are stored" in refused.output

    released = cli("inbox", "release", str(failed.id))
    assert released.exit_code == 0, released.output
    with sessions() as db:
        again = db.get_one(InboundMessage, failed.id)
        audit = db.execute(
            select(AuditEntry.old_status, AuditEntry.new_status)
            .where(AuditEntry.machine == "inbound", AuditEntry.entity_id == failed.id)
            .order_by(AuditEntry.id)
        ).all()
    assert again.status in (InboundStatus.PROCESSED, InboundStatus.REVIEW)
    assert [tuple(step) for step in audit] == [
        (None, "received"),
        ("received", "quarantined"),
        ("quarantined", "received"),
        ("received", again.status.value),
    ]
    # The next read moves the server copy out of Quarantine to the folder of its new status.
    result = cli("inbox", "read", "--once", "--config", config)
    assert result.exit_code == 0, result.output
    assert '"moves_finished": 1' in result.output
    assert_server_matches_db(mailstack, imap, sessions)

    missing = cli("inbox", "show", "999999")
    assert missing.exit_code == 2 and "no inbound message with id 999999" in missing.output


# -- crash safety -----------------------------------------------------------------------


# Generous: importing the CLI takes ~3 s on a busy 2-core machine.
READER_STARTUP_SECONDS = 8.0


def _start_reader(database_url: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "--database-url", database_url,
             "inbox", "read", "--watch", "--config", str(config), "--log-level", "WARNING"],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip


@pytest.mark.integration
@pytest.mark.slow
def test_a_thousand_replies_are_processed_exactly_once_across_kill_9(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee], database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    total = 1_000
    seed = random.SystemRandom().randrange(2**32)
    print(f"kill -9 test seed={seed}")  # shown on failure, to replay the same timings
    rng = random.Random(seed)
    monkeypatch.setenv("DEVMAIL_PASSWORD", mailstack.password)
    config = _config(tmp_path, imap, poll_seconds=1.0)
    log = tmp_path / "reader.log"
    messages = list(replygen.replies(invitees, total, seed=seed))

    def appender() -> None:
        with mailstack.mailbox(imap.user) as box:
            for start in range(0, total, 50):
                for raw in messages[start : start + 50]:
                    box.append(raw, "INBOX")
                time.sleep(rng.uniform(0, 0.1))

    # Three kills at random moments: one while mail is still arriving (often during start-up),
    # two while the backlog is being worked through, at random points of its progress rather
    # than of the clock, so they interrupt work however fast the reader is (plus a random
    # few milliseconds, to land in any phase: fetch, transaction, move, bookkeeping).
    first_kill = rng.uniform(0.5, 3.0)
    kill_at_rows = [round(rng.uniform(0.1, 0.5) * total), round(rng.uniform(0.5, 0.9) * total)]
    recorded_at_kill: list[int] = []
    reader = _start_reader(database_url, config, log)
    restarted = time.monotonic()
    feeding = threading.Thread(target=appender, daemon=True)
    feeding.start()
    started = time.monotonic()
    try:
        for kill in [None, *kill_at_rows]:
            if kill is None:
                time.sleep(max(0.0, first_kill - (time.monotonic() - started)))
            else:
                _wait_for_rows(sessions, kill, timeout=120)
                time.sleep(rng.uniform(0, 0.05))
            reader.send_signal(signal.SIGKILL)
            reader.wait(10)
            recorded_at_kill.append(_count_rows(sessions))
            reader = _start_reader(database_url, config, log)
            restarted = time.monotonic()
        feeding.join(120)
        assert not feeding.is_alive()
        _wait_until_all_filed(mailstack, imap, sessions, total, timeout=300)
        # When the last kill came after everything was filed, the new reader may still be
        # importing, before its SIGTERM handler exists; give it the start-up time first.
        time.sleep(max(0.0, restarted + READER_STARTUP_SECONDS - time.monotonic()))
    finally:
        reader.send_signal(signal.SIGTERM)
        code: int | None
        try:
            code = reader.wait(30)
        except subprocess.TimeoutExpired:
            reader.kill()
            code = None
    print(f"kills at {first_kill:.1f} s and at {kill_at_rows} rows; rows then {recorded_at_kill}")
    assert any(0 < n < total for n in recorded_at_kill), "no kill interrupted work in progress"
    assert code == 0, log.read_text(errors="replace")[-3000:]

    stored = rows(sessions)
    assert len(stored) == total
    sent_ids = sorted(_header(m, "Message-ID") for m in messages)
    assert sorted(r.message_id for r in stored) == sent_ids
    assert all(r.status in DECIDED for r in stored)
    assert decisions_per_row(sessions) == Counter({r.id: 1 for r in stored})
    assert_server_matches_db(mailstack, imap, sessions)
    with sessions() as db:
        applied = db.scalar(
            select(func.count(AuditEntry.id)).where(
                AuditEntry.machine == "participant", AuditEntry.inbound_message_id.is_not(None)
            )
        )
    assert applied and applied >= 20, "the replies should register/decline real invitees"


def _count_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as db:
        return db.scalar(select(func.count(InboundMessage.id))) or 0


def _wait_until_all_filed(
    stack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session], total: int,
    timeout: float,
) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as db:
            filed = db.scalar(
                select(func.count(InboundMessage.id)).where(InboundMessage.moved_at.is_not(None))
            )
        if filed == total and not on_server(stack, imap, imap.folder):
            return
        time.sleep(0.5)
    pytest.fail(f"not all {total} replies were filed within {timeout} s")


@pytest.mark.integration
def test_a_resolved_review_item_leaves_the_review_folder_while_the_reader_waits(
    mailstack: MailStack, imap: ImapSettings, sessions: sessionmaker[Session],
    invitees: list[replygen.Invitee], watcher: Callable[[ImapSettings], threading.Event],
) -> None:  # fmt: skip
    """Found in a walk-through: resolved items stayed in Review on the server for good, since
    only a new connection finished moves, and a waiting reader never reconnects."""
    from workflows.inbound import resolve_review
    from workflows.understanding import ReplyKind

    waiting = watcher(replace(imap, idle=False, poll_seconds=0.3))
    assert waiting.wait(10)
    mailstack.deliver(simple_reply(invitees[0], "Tja, wat zal ik zeggen."), imap.user)
    _wait_for_rows(sessions, 1, timeout=10)
    [row] = rows(sessions)
    assert row.status is InboundStatus.REVIEW
    with sessions() as db, db.begin():
        resolve_review(db, row.id, as_kind=ReplyKind.ACCEPT, actor="marieke")
    deadline = time.monotonic() + 10
    while on_server(mailstack, imap, imap.review_folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert on_server(mailstack, imap, imap.review_folder) == []
    deadline = time.monotonic() + 5  # the bookkeeping follows the move
    while rows(sessions)[0].moved_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_server_matches_db(mailstack, imap, sessions)
