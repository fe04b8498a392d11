"""The SMTP front end: aiosmtpd on loopback, relaying into Dovecot over LMTP.

The application under test sends through this server exactly as it would through a
real relay (optionally with AUTH). Tests steer it with fault injection and inspect
what it accepted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, Literal, NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devmail.dovecot import free_port
from devmail.errors import DeliveryError, DevmailError
from devmail.lmtp import LmtpClient

Stage = Literal["rcpt", "data"]

_DEFAULT_TEXT = {
    ("rcpt", 4): "4.3.0 Temporary failure (injected by devmail)",
    ("rcpt", 5): "5.1.1 Recipient rejected (injected by devmail)",
    ("data", 4): "4.3.0 Temporary failure (injected by devmail)",
    ("data", 5): "5.6.0 Message rejected (injected by devmail)",
}


class AcceptedMessage(NamedTuple):
    """A message the SMTP server accepted and stored in Dovecot."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None


@dataclass
class _CountedFault:
    remaining: int
    code: int
    message: str
    stage: Stage


def _reply(code: int, message: str | None, stage: Stage) -> str:
    if not 400 <= code <= 599:
        raise ValueError(f"SMTP failure codes are 4xx or 5xx, not {code}")
    text = message if message is not None else _DEFAULT_TEXT[(stage, code // 100)]
    return f"{code} {text}"


class _DropLoginDataWarning(logging.Filter):
    """aiosmtpd 1.4 itself sets its deprecated ``Session.login_data`` on every AUTH and
    then logs a warning about it; that noise says nothing about the application."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropLoginDataWarning())


def _message_id(content: bytes) -> str | None:
    # Parsing only the header block keeps this cheap for large messages.
    value = BytesHeaderParser(policy=compat32).parsebytes(content).get("Message-ID")
    return str(value).strip() if value is not None else None


class SmtpServer:
    """aiosmtpd ``Controller`` plus fault injection and bookkeeping.

    Delivery happens before the server answers DATA with 250, so a message is readable
    over IMAP as soon as ``smtplib.sendmail`` returns.
    """

    def __init__(self, lmtp: LmtpClient, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self._lmtp = lmtp
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        self._counted: list[_CountedFault] = []
        self._rejected: dict[str, str] = {}
        #: Every message stored in Dovecot, in order. Tests may ``clear()`` it.
        self.accepted: list[AcceptedMessage] = []
        #: Login names of successful SMTP AUTH exchanges (any credentials are accepted).
        self.auth_logins: list[str] = []
        #: With False, accepted messages are only recorded in :attr:`accepted`, not stored
        #: in Dovecot: for benchmarks that measure the sender, not Dovecot's delivery.
        self.store_messages = True

    # ----------------------------------------------------------- fault injection
    def fail_next(
        self, n: int = 1, code: int = 451, message: str | None = None, *, stage: Stage = "rcpt"
    ) -> None:
        """Answer the next ``n`` RCPT TO (``stage="rcpt"``) or DATA (``stage="data"``)
        commands with ``code``. ``message`` is the reply text after the code; by default
        an enhanced status code and a short explanation. Calls add up in order.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        reply = _reply(code, message, stage)
        with self._lock:
            self._counted.append(_CountedFault(n, code, reply, stage))

    def reject_recipient(self, address: str, code: int = 550, message: str | None = None) -> None:
        """Refuse RCPT TO for ``address`` (exact address, case-insensitive, so a
        +detail variant is a different address) until :meth:`clear_faults`."""
        reply = _reply(code, message, "rcpt")
        with self._lock:
            self._rejected[address.lower()] = reply

    def clear_faults(self) -> None:
        """Forget all pending and persistent faults."""
        with self._lock:
            self._counted.clear()
            self._rejected.clear()

    def _take_fault(self, stage: Stage, address: str | None = None) -> str | None:
        with self._lock:
            if address is not None and address.lower() in self._rejected:
                return self._rejected[address.lower()]
            for fault in self._counted:
                if fault.stage == stage:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._counted.remove(fault)
                    return fault.message
        return None

    # ------------------------------------------------------------ aiosmtpd hooks
    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        fault = self._take_fault("rcpt", address)
        if fault is not None:
            return fault
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self._take_fault("data")
        if fault is not None:
            return fault
        content = envelope.original_content
        if content is None:  # pragma: no cover - aiosmtpd always sets it for DATA
            return "554 5.6.0 No message content"
        mail_from = envelope.mail_from or ""
        rcpt_tos = tuple(envelope.rcpt_tos)
        if not self.store_messages:
            self.accepted.append(AcceptedMessage(mail_from, rcpt_tos, _message_id(content)))
            return "250 OK (not stored)"
        loop = asyncio.get_running_loop()
        try:
            # LMTP is blocking I/O; keep the event loop free for other SMTP sessions.
            await loop.run_in_executor(None, self._lmtp.deliver, mail_from, rcpt_tos, content)
        except DeliveryError as exc:
            # Report Dovecot's verdict class, but as one reply for the whole message.
            code = 550 if 500 <= exc.code < 600 else 451
            return f"{code} {'5' if code == 550 else '4'}.0.0 {exc}"
        except OSError as exc:
            return f"451 4.3.0 Local delivery failed: {exc}"
        self.accepted.append(AcceptedMessage(mail_from, rcpt_tos, _message_id(content)))
        return "250 OK delivered"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # Any credentials are fine: the point is that clients configured for AUTH work.
        if isinstance(auth_data, LoginPassword):
            self.auth_logins.append(auth_data.login.decode(errors="replace"))
        return AuthResult(success=True)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._controller is not None:
            raise DevmailError("SMTP server already started")
        attempts = 1 if self.requested_port else 5
        for attempt in range(attempts):
            port = self.requested_port or free_port(self.host)
            controller = Controller(
                self,
                hostname=self.host,
                port=port,
                server_hostname="devmail.localhost",
                ident="devmail ESMTP",
                decode_data=False,
                enable_SMTPUTF8=True,
                auth_required=False,
                auth_require_tls=False,
                authenticator=self._authenticate,
                ready_timeout=10.0,
            )
            try:
                controller.start()
            except OSError:
                # Port taken between free_port() and bind(); pick another one.
                controller.stop(no_assert=True)
                if attempt == attempts - 1:
                    raise
                continue
            self._controller = controller
            self.port = port
            return

    def stop(self) -> None:
        """Stop accepting connections and join the server thread."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def snapshot(self) -> Sequence[AcceptedMessage]:
        """A copy of :attr:`accepted`, safe to iterate while the server runs."""
        return list(self.accepted)
