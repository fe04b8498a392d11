"""Operating the service: settings, `serve --once`, SIGTERM, `check`, logs, catch-up.

The CLI tests run the real `rsvpmail` executable against the local mail stack and a fresh
database of their own (both backends); the catch-up test runs the real scheduler in-process
with a hand-set clock.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from db.models import (
    AuditEntry,
    Event,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
    Person,
)
from devmail import MailStack
from jobs.cli import app
from jobs.demo import replies
from jobs.logsetup import KeyValueFormatter
from jobs.service import Service
from jobs.settings import (
    ImapSettings,
    ServiceSettings,
    SettingsError,
    SmtpSettings,
    TickIntervals,
    load_settings,
)
from tests.factories import make_event, make_person
from workflows import clock
from workflows.invitations import queue_invitations
from workflows.invitees import add_invitation
from workflows.registration import promote
from workflows.transitions import transition

RSVPMAIL = str(Path(sys.executable).with_name("rsvpmail"))
PASSWORD_VAR = "RSVPMAIL_TEST_MAIL_PASSWORD"
AMS = ZoneInfo("Europe/Amsterdam")
PS = ParticipantStatus
AddressFactory = Callable[..., str]


# ============================================================== helpers (shared with
# tests/test_multi_instance.py)


def future_event(db: Session, reply_address: str, **overrides: object) -> Event:
    """The real example event, moved a month ahead of the real clock (subprocesses use it)."""
    start = (datetime.now(AMS) + timedelta(days=30)).replace(
        hour=13, minute=0, second=0, microsecond=0
    )
    return make_event(
        db,
        reply_address=reply_address,
        starts_at=start,
        ends_at=start + timedelta(hours=4, minutes=30),
        registration_deadline=start - timedelta(days=7),
        **overrides,
    )


def invite_people(
    db: Session, event: Event, addresses: list[str], batch: str = "eerste-ronde"
) -> None:
    for number, address in enumerate(addresses):
        person = make_person(db, address, f"Wethouder {number}")
        add_invitation(db, event, person, batch=batch, reason="test setup")


def write_config(
    path: Path,
    stack: MailStack,
    organiser: str,
    *,
    database_url: str,
    ticks: dict[str, float] | None = None,
    smtp: dict[str, object] | None = None,
    imap: dict[str, object] | None = None,
) -> Path:
    """A service config in TOML; the password comes from $RSVPMAIL_TEST_MAIL_PASSWORD."""
    ticks = {"inbox": 0.5, "outbox": 0.3, "offers": 1, "timeline": 1, "housekeeping": 3600,
             **(ticks or {})}  # fmt: skip
    smtp_values = {"host": stack.smtp_host, "port": stack.smtp_port, "timeout": 10,
                   **(smtp or {})}  # fmt: skip
    imap_values = {"host": stack.imap_host, "port": stack.imap_port, "user": organiser,
                   "password_env": PASSWORD_VAR, "timeout": 10, "poll_seconds": 2,
                   **(imap or {})}  # fmt: skip
    lines = ["[database]", f"url = {json.dumps(database_url)}", "", "[service]",
             'instance_name = "test"', "", "[ticks]"]  # fmt: skip
    lines += [f"{k} = {v}" for k, v in ticks.items()]
    lines += ["", "[smtp]"] + [f"{k} = {_toml(v)}" for k, v in smtp_values.items()]
    lines += ["", "[imap]"] + [f"{k} = {_toml(v)}" for k, v in imap_values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else str(value)


def cli_env(stack: MailStack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSVPMAIL_")}
    env[PASSWORD_VAR] = stack.password
    return env


@dataclass
class Serve:
    """One `rsvpmail serve` process; its logs (stderr) go to a file the test reads."""

    config: Path
    env: dict[str, str]
    log: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [RSVPMAIL, "serve", "--config", str(self.config), *self.args],
            stdout=subprocess.PIPE, stderr=self._log_file, env=self.env,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        """The first log line containing `text`; fails (with the log) after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"no {text!r} in the log of pid {self.pid}:\n" + "\n".join(self.lines()))

    def terminate(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup at all
        self.wait(10)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log_file.close()

    def stop_quietly(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log_file.close()


def log_time(line: str) -> float:
    """The wall-clock time at the start of a log line, as a UNIX timestamp."""
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def outbox_statuses(sessions: sessionmaker[Session]) -> Counter[OutboundStatus]:
    with sessions() as db:
        return Counter(db.scalars(select(OutboundMessage.status)))


def sent_mail(stack: MailStack, sender_domain: str) -> Counter[tuple[str | None, str]]:
    """(Message-ID, recipient) of each mail the SMTP server accepted from the service."""
    return Counter(
        (m.message_id, rcpt.lower())
        for m in stack.smtp.snapshot()
        if m.mail_from.lower().endswith("@" + sender_domain)
        for rcpt in m.rcpt_tos
    )


def send_reply(stack: MailStack, address: str, name: str, to_kind: str, text: str) -> str:
    """`address` answers their latest `to_kind` mail as Gmail would; returns its Message-ID."""
    with stack.mailbox(address) as box:
        parsed = [email.message_from_bytes(m.obj.as_bytes(), policy=email.policy.default)
                  for m in box.fetch(mark_seen=False)]  # fmt: skip
    found = [m for m in parsed if m.get("X-Rsvpmail-Kind") == to_kind]
    assert found, f"{address} has no {to_kind} mail to answer"
    raw = replies.gmail(found[-1], (name, address), datetime.now(AMS), text)
    with smtplib.SMTP(stack.smtp_host, stack.smtp_port, timeout=10) as smtp:
        smtp.sendmail(address, [replies.reply_address(found[-1])], raw)
    match = re.search(rb"^Message-ID:\s*(<[^>]+>)", raw, re.MULTILINE | re.IGNORECASE)
    assert match is not None
    return match.group(1).decode()


@dataclass
class Setup:
    database_url: str
    sessions: sessionmaker[Session]
    stack: MailStack
    organiser: str
    addresses: list[str]
    config: Path
    env: dict[str, str]
    tmp: Path

    def serve(self, name: str, *args: str, config: Path | None = None) -> Serve:
        return Serve(config or self.config, self.env, self.tmp / f"{name}.log", args)

    def run(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RSVPMAIL, *args, "--config", str(config or self.config)],
            capture_output=True, text=True, env=self.env, timeout=120,
        )  # fmt: skip


@pytest.fixture
def setup(
    database_url: str,
    sessions: sessionmaker[Session],
    mailstack: MailStack,
    mail_address: AddressFactory,
    tmp_path: Path,
) -> Setup:
    """A future event with five pending invitations, replies read from a mailbox of its own."""
    organiser = mail_address("aanmelden", "wijkwijzer.example")
    addresses = [mail_address(f"wethouder{i}", f"gemeente{i}.example") for i in range(5)]
    with sessions() as db, db.begin():
        event = future_event(db, organiser, capacity=3)
        invite_people(db, event, addresses)
        queue_invitations(db, event, batch="eerste-ronde")
    config = write_config(tmp_path / "rsvpmail.toml", mailstack, organiser,
                          database_url=database_url)  # fmt: skip
    return Setup(database_url, sessions, mailstack, organiser, addresses, config,
                 cli_env(mailstack), tmp_path)  # fmt: skip


# ============================================================== settings (pure)


def _settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rsvpmail.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_passwords_come_from_the_named_environment_variable(tmp_path: Path) -> None:
    path = _settings_file(
        tmp_path,
        """
        [imap]
        user = "aanmelden@x.example"
        password_env = "MY_IMAP_SECRET"
        [smtp]
        password_env = "MY_SMTP_SECRET"
    """,
    )
    settings = load_settings(path, env={"MY_IMAP_SECRET": "s3cret", "MY_SMTP_SECRET": "other"})
    assert (settings.imap.password, settings.smtp.password) == ("s3cret", "other")
    assert "s3cret" not in repr(settings)


def test_a_missing_password_variable_is_named(tmp_path: Path) -> None:
    path = _settings_file(tmp_path, '[imap]\npassword_env = "MY_IMAP_SECRET"\n')
    with pytest.raises(SettingsError, match=r"\[imap\] password_env: \$MY_IMAP_SECRET is not set"):
        load_settings(path, env={})


def test_a_password_in_the_file_is_refused_with_the_way_out(tmp_path: Path) -> None:
    path = _settings_file(tmp_path, '[smtp]\nhost = "smtp.x.example"\npassword = "hunter2"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert message.startswith(f"{path}: [smtp] password: do not put secrets in the file")
    assert "password_env" in message and "RSVPMAIL_SMTP_PASSWORD" in message
    assert "hunter2" not in message


def test_environment_overrides_every_section(tmp_path: Path) -> None:
    path = _settings_file(
        tmp_path,
        """
        [database]
        url = "sqlite:///from-file.db"
        [smtp]
        host = "smtp.from-file.example"
        port = 587
        [imap]
        idle = true
        [ticks]
        outbox = 5
    """,
    )
    env = {
        "RSVPMAIL_SMTP_HOST": "127.0.0.1",
        "RSVPMAIL_SMTP_PORT": "2525",
        "RSVPMAIL_IMAP_IDLE": "no",
        "RSVPMAIL_IMAP_PASSWORD": "from-env",
        "RSVPMAIL_TICKS_OUTBOX": "0.5",
        "RSVPMAIL_DATABASE_URL": "postgresql://db.example/rsvpmail",
        "RSVPMAIL_SERVICE_INSTANCE_NAME": "node-2",
    }
    settings = load_settings(path, env=env)
    assert (settings.smtp.host, settings.smtp.port) == ("127.0.0.1", 2525)
    assert settings.imap.idle is False and settings.imap.password == "from-env"
    assert settings.ticks.outbox == 0.5 and settings.ticks.inbox == TickIntervals().inbox
    assert settings.database_url == "postgresql://db.example/rsvpmail"
    assert settings.instance_name == "node-2"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[smtp]\nhots = "x"\n', r"\[smtp\] hots: unknown setting"),
        ('[smpt]\nhost = "x"\n', r"\[smpt\]: unknown section"),
        ('[imap]\nport = "imap"\n', r"\[imap\] port: expected int, got 'imap'"),
        ('[imap]\nidle = "sometimes"\n', r"\[imap\] idle: expected true or false"),
        ('[smtp]\ntls = "tls"\n', r"\[smtp\] tls: must be one of none, starttls, ssl"),
        ("[smtp]\nport = 70000\n", r"\[smtp\] port: 70000 is not a TCP port"),
        ("[ticks]\noutbox = 0\n", r"\[ticks\] outbox: must be above 0 seconds"),
        ("[imap\n", r"invalid TOML"),
    ],
)
def test_bad_settings_say_what_and_where(tmp_path: Path, text: str, problem: str) -> None:
    path = _settings_file(tmp_path, text)
    with pytest.raises(SettingsError, match=problem) as caught:
        load_settings(path, env={})
    assert str(caught.value).startswith(str(path))


def test_log_lines_are_single_lines_of_key_value_pairs() -> None:
    import logging

    record = logging.LogRecord("rsvpmail.x", logging.ERROR, __file__, 1, "message read", None,
                               None)  # fmt: skip
    record.fields = {"inbound_id": 7, "error": 'bad "header"\nnext line'}
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    assert re.fullmatch(
        r"\S+ level=error logger=rsvpmail\.x msg=\"message read\" inbound_id=7 "
        r"error=\"bad \\\"header\\\"\\nnext line\" exc=\".*ValueError: first\\nsecond\"",
        line,
    ), line


# ============================================================== serve --once


@pytest.mark.integration
@pytest.mark.slow
def test_serve_once_runs_every_job_once_and_prints_a_json_summary(setup: Setup) -> None:
    first = setup.run("serve", "--once")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert set(summary) == {"inbox", "offers", "timeline", "outbox", "housekeeping"}
    assert summary["outbox"]["sent"] == 5 and summary["outbox"]["failed"] == 0
    assert summary["inbox"]["fetched"] == 0
    for address in setup.addresses:
        assert setup.stack.message_count(address) == 1

    reply_id = send_reply(setup.stack, setup.addresses[0], "Wethouder 0", "invitation",
                          "Ja, ik kom graag, deelsessie wonen.")  # fmt: skip
    second = setup.run("serve", "--once")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert (summary["inbox"]["fetched"], summary["inbox"]["processed"]) == (1, 1)
    assert summary["outbox"]["sent"] == 1  # the confirmation
    assert setup.stack.message_count(setup.organiser) == 0  # filed in Processed
    # The decisions are in the log, one line each, with the ids to trace them.
    read = [line for line in second.stderr.splitlines() if 'msg="message read"' in line]
    assert len(read) == 1 and "inbound_id=" in read[0] and "status=processed" in read[0]
    sent = [line for line in second.stderr.splitlines() if "registration_confirmed" in line]
    assert len(sent) == 1 and "outcome=sent" in sent[0] and "outbox_id=" in sent[0]
    with setup.sessions() as db:
        statuses = db.scalars(select(Participant.status).join(Person).where(
            Person.email == setup.addresses[0])).all()  # fmt: skip
    assert statuses == [PS.REGISTERED], reply_id

    third = setup.run("serve", "--once")
    summary = json.loads(third.stdout)
    assert (third.returncode, summary["inbox"]["fetched"], summary["outbox"]["sent"]) == (0, 0, 0)


# ============================================================== SIGTERM


@pytest.mark.integration
@pytest.mark.slow
def test_sigterm_finishes_the_mail_in_hand_exits_0_and_frees_the_locks(
    setup: Setup, mail_address: AddressFactory
) -> None:
    more = [mail_address(f"raadslid{i}", "gemeente.example") for i in range(35)]
    with setup.sessions() as db, db.begin():
        event = db.scalars(select(Event)).one()
        invite_people(db, event, more, batch="tweede-ronde")
        queue_invitations(db, event, batch="tweede-ronde")
    # 120 a minute: a burst of 12, then one every ~0.55 s, so SIGTERM meets a busy sender.
    slow = write_config(setup.tmp / "slow.toml", setup.stack, setup.organiser,
                        database_url=setup.database_url,
                        smtp={"rate_limit_per_minute": 120, "batch_size": 4})  # fmt: skip
    first = setup.serve("first", config=slow)
    try:
        first.wait_for("reader lock taken")
        wait_until(lambda: outbox_statuses(setup.sessions)[OutboundStatus.SENT] >= 14, 30,
                   "the first mails")  # fmt: skip
        started = time.monotonic()
        assert first.terminate(timeout=20) == 0, "\n".join(first.lines())
        assert time.monotonic() - started < 10
    finally:
        first.stop_quietly()
    assert "service stopped" in first.lines()[-1]
    left = outbox_statuses(setup.sessions)
    assert left[OutboundStatus.SENDING] == 0, "a claimed mail was abandoned, not finished"
    assert left[OutboundStatus.PENDING] > 0, "the service should have stopped mid-way"

    # A second instance may start at once (the SQLite file lock, the PostgreSQL reader lock
    # are free) and sends the rest.
    second = setup.serve("second")
    try:
        second.wait_for("reader lock taken", timeout=10)
        wait_until(lambda: set(outbox_statuses(setup.sessions)) == {OutboundStatus.SENT}, 30,
                   "the rest of the outbox")  # fmt: skip
        assert second.terminate() == 0
    finally:
        second.stop_quietly()
    accepted = sent_mail(setup.stack, "wijkwijzer.example")
    with setup.sessions() as db:
        rows = db.execute(select(OutboundMessage.message_id, OutboundMessage.recipient)).all()
    assert len(rows) == 40
    assert all(accepted[(mid, rcpt.lower())] == 1 for mid, rcpt in rows)


# ============================================================== check


def _check(config: Path, database_url: str, env: dict[str, str]) -> tuple[int, list[str]]:
    result = CliRunner().invoke(
        app, ["--database-url", database_url, "check", "--config", str(config)], env=env
    )
    return result.exit_code, result.output.splitlines()


@pytest.mark.integration
def test_check_passes_with_a_good_configuration(setup: Setup) -> None:
    code, lines = _check(setup.config, setup.database_url, setup.env)
    assert code == 0, lines
    assert len(lines) == 4 and all(line.startswith("✓") for line in lines), lines
    assert any(f"{setup.stack.imap_host}:{setup.stack.imap_port}" in line for line in lines)


@pytest.mark.integration
def test_check_names_what_is_wrong(setup: Setup, tmp_path: Path) -> None:
    closed_port = _free_port()
    broken = write_config(tmp_path / "broken.toml", setup.stack, setup.organiser,
                          database_url=setup.database_url,
                          smtp={"port": closed_port})  # fmt: skip
    env = {**setup.env, PASSWORD_VAR: "not-the-password"}
    empty_db = tmp_path / "never-migrated.db"
    sqlite3.connect(empty_db).close()  # there, but never migrated
    code, lines = _check(broken, f"sqlite:///{empty_db}", env)
    assert code != 0
    crosses = [line for line in lines if line.startswith("✗")]
    assert len(crosses) == 3, lines
    database, imap, smtp = crosses
    assert str(empty_db) in database and "not initialised" in database
    assert f"rsvpmail --database-url sqlite:///{empty_db} db upgrade" in database
    assert f"IMAP {setup.organiser}@{setup.stack.imap_host}:{setup.stack.imap_port}" in imap
    assert "auth" in imap.lower()  # the server's answer: authentication failed
    assert f"SMTP 127.0.0.1:{closed_port}" in smtp and "refused" in smtp.lower()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ============================================================== catch-up after downtime


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self.at = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def manual_clock() -> Iterator[ManualClock]:
    manual = ManualClock(datetime(2023, 1, 20, 12, 0, tzinfo=AMS))
    previous = clock.set_clock(manual)
    yield manual
    clock.set_clock(previous)


def _kinds(sessions: sessionmaker[Session]) -> Counter[tuple[str, str]]:
    with sessions() as db:
        rows = db.execute(
            select(OutboundMessage.recipient, OutboundMessage.kind, OutboundMessage.status)
        ).all()
    assert all(status is OutboundStatus.SENT for _, _, status in rows), rows
    return Counter((recipient, kind) for recipient, kind, _ in rows)


def _run_service_for(service: Service, sessions: sessionmaker[Session], seconds: float) -> None:
    """Start, wait until the outbox is empty and `seconds` more (many ticks), stop."""
    service.start()
    try:
        wait_until(lambda: set(outbox_statuses(sessions)) <= {OutboundStatus.SENT}, 30,
                   "the outbox to be sent")  # fmt: skip
        time.sleep(seconds)
    finally:
        service.stop()


@pytest.mark.integration
@pytest.mark.slow
def test_after_downtime_the_service_catches_up_exactly_once(
    engine: Engine,
    sessions: sessionmaker[Session],
    mailstack: MailStack,
    mail_address: AddressFactory,
    manual_clock: ManualClock,
) -> None:
    organiser = mail_address("aanmelden", "wijkwijzer.example")
    r1, r2, w1, w2 = (mail_address(n, "gemeente.example") for n in ("r1", "r2", "w1", "w2"))
    with sessions() as db, db.begin():
        event = make_event(db, reply_address=organiser, capacity=3)
        invite_people(db, event, [r1, r2, w1, w2])
        participants = db.scalars(select(Participant).order_by(Participant.id)).all()
        for participant in participants[:2]:
            transition(db, participant, PS.REGISTERED, reason="test: said yes")
        for participant in participants[2:]:
            participant.waitlist_seq = participant.id
            transition(db, participant, PS.WAITLISTED, reason="test: said yes when it was full")
        [offered] = promote(db, event)  # one seat free: w1 gets it until 22 Jan 12:00
        event_id = event.id
    settings = ServiceSettings(
        imap=ImapSettings(host=mailstack.imap_host, port=mailstack.imap_port, user=organiser,
                          password=mailstack.password, timeout=10, idle=False),
        smtp=SmtpSettings(host=mailstack.smtp_host, port=mailstack.smtp_port, timeout=10),
        ticks=TickIntervals(inbox=0.3, outbox=0.2, offers=0.2, timeline=0.2, housekeeping=3600),
    )  # fmt: skip

    _run_service_for(Service(settings=settings, engine=engine), sessions, 1.0)
    assert _kinds(sessions) == {(w1, "seat_offered"): 1}

    # Down from 20 January noon until 25 January 10:00: the offer expired on the 22nd, the
    # 7-day reminder fell due on the 25th at 09:00. Restarted twice: each runs every tick at
    # once and then many more times.
    manual_clock.at = datetime(2023, 1, 25, 10, 0, tzinfo=AMS).astimezone(UTC)
    _run_service_for(Service(settings=settings, engine=engine), sessions, 1.0)
    _run_service_for(Service(settings=settings, engine=engine), sessions, 0.5)

    assert _kinds(sessions) == {
        (w1, "seat_offered"): 1,
        (w1, "offer_expired"): 1,
        (w2, "seat_offered"): 1,  # the freed seat goes on to the next in line
        (r1, "reminder"): 1,
        (r2, "reminder"): 1,
    }
    with sessions() as db:
        expiries = db.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.machine == "participant", AuditEntry.entity_id == offered.id,
            AuditEntry.new_status == PS.EXPIRED.value))  # fmt: skip
        statuses = dict(db.execute(select(Person.email, Participant.status).join(Participant)
                                   .where(Participant.event_id == event_id)).all())  # fmt: skip
    assert expiries == 1
    assert statuses == {r1: PS.REGISTERED, r2: PS.REGISTERED, w1: PS.EXPIRED, w2: PS.OFFERED}
    for address, kinds in ((r1, ["reminder"]), (w1, ["seat_offered", "offer_expired"])):
        with mailstack.mailbox(address) as box:
            got = [m.headers.get("x-rsvpmail-kind", ("?",))[0]
                   for m in box.fetch(headers_only=True, mark_seen=False)]  # fmt: skip
        assert got == kinds


def test_a_database_url_from_the_config_is_used(tmp_path: Path) -> None:
    """`--config` alone is enough: the file's [database] url picks the database."""
    target = tmp_path / "from-config.db"
    config = _settings_file(tmp_path, f'[database]\nurl = "sqlite:///{target}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSVPMAIL_")}
    result = CliRunner().invoke(app, ["check", "--config", str(config)], env=env)
    assert result.exit_code != 0
    assert f"no database at {target}" in result.output
    assert f"rsvpmail -c {config} db upgrade" in result.output
