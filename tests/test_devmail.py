"""Integration tests of the local mail stack (devmail): real Dovecot, real SMTP."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from imap_tools import MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError

from devmail import MailStack

# Lets this module run on its own; harmless once tests/conftest.py loads the plugin too.

pytestmark = pytest.mark.integration

AddressFactory = Callable[..., str]


def _message(to: str, subject: str, body: str, sender: str = "app@rsvp.example") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="rsvp.example")
    msg.set_content(body)
    return msg


def _send(stack: MailStack, msg: EmailMessage, rcpts: list[str] | None = None) -> None:
    with smtplib.SMTP(stack.smtp_host, stack.smtp_port, timeout=30) as smtp:
        smtp.send_message(msg, to_addrs=rcpts)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _live_processes_mentioning(text: str) -> list[int]:
    """PIDs of non-zombie processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def test_send_via_smtp_and_read_back_over_imap(
    mailstack: MailStack, mail_address: AddressFactory
) -> None:
    user = mail_address("aanmelden")
    local, domain = user.split("@")
    rcpt = f"{local}+tok3n42@{domain}"
    msg = _message(rcpt, "Aanmelding: Jaarcongres", "Graag meld ik mij aan.\nGroet, Ans")

    with smtplib.SMTP(mailstack.smtp_host, mailstack.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("auth")
        smtp.login("rsvp-app", "whatever")  # AUTH is accepted with any credentials
        smtp.send_message(msg)

    with MailBoxUnencrypted(mailstack.imap_host, mailstack.imap_port).login(
        user, mailstack.password
    ) as box:
        messages = list(box.fetch())
    assert len(messages) == 1
    got = messages[0]
    assert got.subject == "Aanmelding: Jaarcongres"
    assert "Graag meld ik mij aan." in got.text
    assert got.headers["delivered-to"] == (rcpt,)
    assert got.headers["message-id"] == (msg["Message-ID"],)
    assert "rsvp-app" in mailstack.smtp.auth_logins
    accepted = [a for a in mailstack.smtp.accepted if a.message_id == msg["Message-ID"]]
    assert accepted == [("app@rsvp.example", (rcpt,), msg["Message-ID"])]


def test_plus_addresses_land_in_the_base_inbox(
    mailstack: MailStack, mail_address: AddressFactory
) -> None:
    user = mail_address("aanmelden")
    local, domain = user.split("@")
    tokens = ["abc123", "XyZ789"]
    for token in tokens:
        _send(mailstack, _message(f"{local}+{token}@{domain}", f"reply {token}", "ja"))
    # Upper case in the address still reaches the same (lower-case) mailbox.
    _send(mailstack, _message(f"{local.upper()}@{domain}", "shouting", "JA"))

    with mailstack.mailbox(user) as box:
        delivered = sorted(m.headers["delivered-to"][0] for m in box.fetch())
        assert [f.name for f in box.folder.list()] == ["INBOX"]
    assert delivered == sorted(
        [f"{local}+abc123@{domain}", f"{local}+XyZ789@{domain}", f"{local.upper()}@{domain}"]
    )
    assert mailstack.message_count(user) == 3


def test_temporary_rcpt_failure_then_success_on_retry(
    mailstack: MailStack, mail_address: AddressFactory
) -> None:
    user = mail_address()
    msg = _message(user, "retry me", "body")
    mailstack.smtp.fail_next(1, code=451, message="4.7.1 Try again later")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as excinfo:
        _send(mailstack, msg)
    assert excinfo.value.recipients[user] == (451, b"4.7.1 Try again later")
    assert mailstack.message_count(user) == 0

    _send(mailstack, msg)
    assert mailstack.message_count(user) == 1


def test_temporary_data_failure_stores_nothing(
    mailstack: MailStack, mail_address: AddressFactory
) -> None:
    user = mail_address()
    msg = _message(user, "data fault", "body")
    mailstack.smtp.fail_next(1, code=452, stage="data")

    with pytest.raises(smtplib.SMTPDataError) as excinfo:
        _send(mailstack, msg)
    assert excinfo.value.smtp_code == 452
    assert all(a.message_id != msg["Message-ID"] for a in mailstack.smtp.accepted)

    _send(mailstack, msg)
    assert mailstack.message_count(user) == 1
    assert [a.message_id for a in mailstack.smtp.accepted].count(msg["Message-ID"]) == 1


def test_permanent_rejection_of_one_recipient(
    mailstack: MailStack, mail_address: AddressFactory
) -> None:
    bad, good = mail_address("bad"), mail_address("good")
    mailstack.smtp.reject_recipient(bad.upper(), code=550)

    # Persistent: refused every time, while other recipients still get the message.
    for _ in range(2):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as excinfo:
            _send(mailstack, _message(bad, "nope", "body"))
        code, text = excinfo.value.recipients[bad]
        assert code == 550
        assert text.startswith(b"5.1.1")
    with smtplib.SMTP(mailstack.smtp_host, mailstack.smtp_port, timeout=30) as smtp:
        refused = smtp.send_message(_message(good, "mixed", "body"), to_addrs=[bad, good])
    assert set(refused) == {bad}
    assert mailstack.message_count(good) == 1

    mailstack.smtp.clear_faults()
    _send(mailstack, _message(bad, "now ok", "body"))
    assert mailstack.message_count(bad) == 1


def test_folders_are_created_on_demand(mailstack: MailStack, mail_address: AddressFactory) -> None:
    user = mail_address()
    mailstack.deliver(_message(user, "to be filed", "body"), user)
    with mailstack.mailbox(user) as box:
        for folder in ("Processed", "Review", "Quarantine", "Sent"):
            box.folder.create(folder)
        uids = [m.uid for m in box.fetch(mark_seen=False) if m.uid is not None]
        assert len(uids) == 1
        box.move(uids, "Processed")
        names = {f.name for f in box.folder.list()}
    assert names == {"INBOX", "Processed", "Review", "Quarantine", "Sent"}
    assert mailstack.message_count(user, "Processed") == 1
    assert mailstack.message_count(user) == 0


def test_deliver_uses_from_header_or_null_sender(
    mailstack: MailStack, mail_address: AddressFactory
) -> None:
    user = mail_address()
    mailstack.deliver(_message(user, "normal", "x", sender="Ans <ans@guest.example>"), user)
    mailstack.deliver(_message(user, "bounce", "x"), user, mail_from="")
    with mailstack.mailbox(user) as box:
        paths = {m.subject: m.headers["return-path"][0] for m in box.fetch()}
    assert paths == {"normal": "<ans@guest.example>", "bounce": "<>"}


def test_wrong_password_is_refused(mailstack: MailStack, mail_address: AddressFactory) -> None:
    with pytest.raises(MailboxLoginError):
        mailstack.mailbox(mail_address(), password="not-the-password")


def test_two_stacks_do_not_share_mail(fresh_mailstack: MailStack, tmp_path: Path) -> None:
    user = "aanmelden@x.example"
    with MailStack(tmp_path / "second", password="other-secret") as second:
        ports = {fresh_mailstack.imap_port, fresh_mailstack.smtp_port}
        assert not ports & {second.imap_port, second.smtp_port}

        _send(fresh_mailstack, _message(user, "for the first", "1"))
        _send(second, _message(user, "for the second", "2"))
        _send(second, _message(user, "for the second again", "3"))

        assert fresh_mailstack.message_count(user) == 1
        assert second.message_count(user) == 2
        with second.mailbox(user) as box:
            assert {m.subject for m in box.fetch()} == {"for the second", "for the second again"}
        with pytest.raises(MailboxLoginError):
            second.mailbox(user, password=fresh_mailstack.password)
        assert len(fresh_mailstack.smtp.accepted) == 1
        assert len(second.smtp.accepted) == 2


def test_idle_wakes_up_on_delivery(mailstack: MailStack, mail_address: AddressFactory) -> None:
    user = mail_address()
    with mailstack.mailbox(user) as box:
        box.idle.start()
        try:
            assert box.idle.poll(timeout=0.2) == []  # nothing yet
            started = time.monotonic()
            mailstack.deliver(_message(user, "wake up", "x"), user)
            responses = box.idle.poll(timeout=10)
        finally:
            box.idle.stop()
        assert any(r.endswith(b"EXISTS") for r in responses), responses
        assert time.monotonic() - started < 5


def test_stop_leaves_no_dovecot_process(tmp_path: Path) -> None:
    stack = MailStack(tmp_path / "stack").start()
    assert stack.dovecot.pid is not None
    pids = [stack.dovecot.pid, *stack.dovecot.child_pids()]
    assert len(pids) > 2  # master plus helpers such as log, config, auth, imap-login
    imap, smtp = (stack.imap_host, stack.imap_port), (stack.smtp_host, stack.smtp_port)
    assert _port_open(*imap)
    assert _port_open(*smtp)
    # A client still connected (here: idling) must not keep Dovecot processes alive.
    box = stack.mailbox("idler@x.example")
    box.idle.start()

    stack.stop()

    assert box.idle.poll(timeout=5) == [b"* BYE Server shutting down."]

    assert _live_processes_mentioning(str(stack.dovecot.config_path)) == []
    still_running = [pid for pid in pids if pid in _live_processes_mentioning("dovecot")]
    assert still_running == []
    assert not _port_open(*imap)
    assert not _port_open(*smtp)
    stack.stop()  # idempotent


def test_cli_runs_in_foreground_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devmail", "run", "--dir", str(tmp_path / "cli")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["password"] == "devmail"
        smtp = smtplib.SMTP(info["smtp_host"], info["smtp_port"], timeout=30)
        with smtp:
            smtp.send_message(_message("cli@x.example", "via cli", "x"))
        box = MailBoxUnencrypted(info["imap_host"], info["imap_port"])
        with box.login("cli@x.example", info["password"]):
            assert [m.subject for m in box.fetch()] == ["via cli"]

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _port_open(info["imap_host"], info["imap_port"])
    assert _live_processes_mentioning(str(tmp_path / "cli" / "dovecot.conf")) == []
    assert os.path.exists(tmp_path / "cli" / "dovecot.log")


def test_restart_on_the_same_directory_keeps_mail() -> None:
    # pytest's tmp_path lies below a 0700 directory that Dovecot's unprivileged
    # processes cannot enter, so MailStack would use a throw-away spool there; a
    # world-traversable directory keeps the mail (as the demo's --dir does).
    with tempfile.TemporaryDirectory(prefix="devmail-test-") as tmp:
        Path(tmp).chmod(0o755)
        with MailStack(tmp) as stack:
            stack.deliver(_message("keep@x.example", "kept", "x"), "keep@x.example")
            assert stack.dovecot.mail_root == Path(tmp).resolve() / "mail"
        with MailStack(tmp) as stack:
            assert stack.message_count("keep@x.example") == 1
