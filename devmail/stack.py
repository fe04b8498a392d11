"""MailStack: Dovecot (IMAP + LMTP) and the SMTP front end, started and stopped together."""

from __future__ import annotations

import atexit
import tempfile
from collections.abc import Sequence
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from imap_tools import MailBoxUnencrypted

from devmail.dovecot import DEFAULT_PASSWORD, DovecotServer
from devmail.errors import DevmailError
from devmail.lmtp import LmtpClient
from devmail.smtp import SmtpServer

_FALLBACK_SENDER = "devmail@devmail.localhost"


class MailStack:
    """A complete local mail system for tests and the demo.

    * IMAP: Dovecot on ``imap_host:imap_port``; every user name (an e-mail address)
      logs in with ``password``, and its mailbox is created on first use.
    * SMTP: ``smtp_host:smtp_port`` accepts any recipient and stores the message in the
      recipient's INBOX (``user+tag@domain`` goes to ``user@domain``), with the original
      recipient in a ``Delivered-To`` header. AUTH is optional and accepts anything.
    * :attr:`smtp` offers fault injection and the list of accepted messages.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Without
    ``base_dir`` a temporary directory is used and removed again by :meth:`stop`.
    """

    def __init__(
        self,
        base_dir: Path | str | None = None,
        *,
        password: str = DEFAULT_PASSWORD,
        imap_port: int = 0,
        smtp_port: int = 0,
    ) -> None:
        self._own_tmp: tempfile.TemporaryDirectory[str] | None = None
        if base_dir is None:
            self._own_tmp = tempfile.TemporaryDirectory(prefix="devmail-")
            base_dir = self._own_tmp.name
        self.base_dir = Path(base_dir).resolve()
        self.password = password
        self.dovecot = DovecotServer(self.base_dir, password=password, imap_port=imap_port)
        self._lmtp = LmtpClient(self.dovecot.lmtp_socket)
        self.smtp = SmtpServer(self._lmtp, port=smtp_port)
        self._started = False

    # ------------------------------------------------------------- addresses
    @property
    def imap_host(self) -> str:
        return self.dovecot.host

    @property
    def imap_port(self) -> int:
        return self.dovecot.imap_port

    @property
    def smtp_host(self) -> str:
        return self.smtp.host

    @property
    def smtp_port(self) -> int:
        return self.smtp.port

    @property
    def lmtp_socket(self) -> Path:
        return self.dovecot.lmtp_socket

    @property
    def log_path(self) -> Path:
        return self.dovecot.log_path

    def info(self) -> dict[str, Any]:
        """Connection details, as printed by ``python -m devmail run``."""
        return {
            "imap_host": self.imap_host,
            "imap_port": self.imap_port,
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port,
            "password": self.password,
            "base_dir": str(self.base_dir),
            "mail_dir": str(self.dovecot.mail_root),
            "lmtp_socket": str(self.lmtp_socket),
            "log": str(self.log_path),
            "dovecot_pid": self.dovecot.pid,
        }

    # ------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        if self._started:
            raise DevmailError("MailStack already started")
        self.dovecot.start()
        # The LMTP client follows the spool chosen at start-up.
        self._lmtp.socket_path = self.dovecot.lmtp_socket
        try:
            self.smtp.start()
        except BaseException:
            self.dovecot.stop()
            raise
        self._started = True
        # A test run that dies without teardown must not leave Dovecot running.
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop SMTP, then Dovecot (waiting for all its processes). Idempotent."""
        atexit.unregister(self.stop)
        try:
            self.smtp.stop()
            self._lmtp.close()
        finally:
            self.dovecot.stop()
            self._started = False
            if self._own_tmp is not None:
                self._own_tmp.cleanup()
                self._own_tmp = None

    @property
    def running(self) -> bool:
        return self._started and self.dovecot.running

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --------------------------------------------------------------- helpers
    def mailbox(self, user: str, password: str | None = None) -> MailBoxUnencrypted:
        """An imap-tools mailbox logged in as ``user``; the caller closes it
        (``with stack.mailbox(u) as mb: ...`` or ``mb.logout()``).

        Note: imap-tools' ``MailBox`` speaks IMAPS; this server is plain IMAP, hence
        ``MailBoxUnencrypted``.
        """
        box = MailBoxUnencrypted(self.imap_host, self.imap_port, timeout=30)
        box.login(user, self.password if password is None else password)
        return box

    def deliver(
        self,
        raw: bytes | str | Message,
        rcpt: str | Sequence[str],
        *,
        mail_from: str | None = None,
    ) -> None:
        """Put a message straight into the recipient mailbox(es) through LMTP.

        This bypasses the SMTP server (no fault injection, not counted in
        ``smtp.accepted``) and is the quick way to simulate incoming mail.
        ``mail_from`` (the Return-Path) defaults to the From: address of the message;
        pass ``""`` for a bounce-style null sender.
        """
        if isinstance(raw, Message):
            data = raw.as_bytes()
        elif isinstance(raw, str):
            data = raw.encode("utf-8")
        else:
            data = raw
        if mail_from is None:
            mail_from = _from_address(data)
        recipients = [rcpt] if isinstance(rcpt, str) else list(rcpt)
        self._lmtp.deliver(mail_from, recipients, data)

    def message_count(self, user: str, folder: str = "INBOX") -> int:
        """Number of messages in ``folder`` of ``user`` (the folder must exist)."""
        with self.mailbox(user) as box:
            status = box.folder.status(folder, ["MESSAGES"])
        return int(status["MESSAGES"])


def _from_address(data: bytes) -> str:
    value = BytesHeaderParser().parsebytes(data).get("From")
    if value:
        addresses = [addr for _name, addr in getaddresses([str(value)]) if addr]
        if addresses:
            return addresses[0]
    return _FALLBACK_SENDER
