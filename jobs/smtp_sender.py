"""The outbox sender: a thin SMTP adapter around workflows.sending.

`send_due()` loops: take tokens from the shared rate-limit bucket → claim that many due rows
→ send each over one reused SMTP connection → record each result in its own transaction →
repeat until nothing is due. What counts as "retry" or "failed" is decided here from the
server's reply code; what that means for the row is decided in workflows.sending.

Database work runs on one thread of its own, so the commit that records mail N overlaps with
transmitting mail N+1; only N+1's final "." (the moment the server accepts it) waits for
that commit. That keeps the guarantee of at most one duplicate after a crash while the
sender does not sit idle during every commit. The database thread keeps one connection of
its own, and (without a rate limit) claims the next batch halfway through the current one.

Logs one line per mail: outbox id, kind, the recipient's domain only and the result. Never
message bodies, full addresses or passwords.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from db.engine import transaction
from db.models import OutboundStatus
from jobs.settings import ImapSettings, ServiceSettings, SmtpSettings
from workflows.clock import now
from workflows.ratelimit import return_tokens, seconds_until_token, take_tokens
from workflows.sending import (
    ClaimedMail,
    RetryPolicy,
    claim_due,
    error_code,
    has_due,
    mail_log_fields,
    mark_failed,
    mark_retry,
    record_accepted_on,
    settle_accepted,
)

log = logging.getLogger("rsvpmail.smtp")
_T = TypeVar("_T")

# Do not start sending a mail whose lease ends within this margin (30 s, or a tenth of a
# short lease): another worker may take the row over at the end of the lease, and both
# would send it.
LEASE_SAFETY = timedelta(seconds=30)
_BARE_NEWLINE = re.compile(rb"\r?\n")
# Accepted mails are moved from sending to sent (audit rows, follow-ups) in groups this big.
SETTLE_EVERY = 50


class Outcome(Enum):
    SENT = "sent"
    RETRY = "retry"  # 4xx, timeouts, disconnects
    FAILED = "failed"  # 5xx


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""


class RecordingFailed(Exception):
    """A result could not be written; sending stops (leased rows are retried later)."""


class SmtpConfigError(Exception):
    """The server refused our login or TLS: no mail can go out until the settings are fixed."""


def new_worker_id() -> str:
    """Unique per process run, so a restarted worker never mistakes old claims for its own."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def smtp_lines(raw: bytes) -> bytes:
    """CRLF line endings, as SMTP requires; smtplib sends bytes exactly as given."""
    if raw.count(b"\n") == raw.count(b"\r\n"):
        return raw  # already CRLF (what mail_templates produces): skip the regex
    return _BARE_NEWLINE.sub(b"\r\n", raw)


def classify(exc: BaseException) -> SendResult:
    """Map an smtplib/socket error to retry (temporary) or failed (permanent)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # One recipient per transaction, so one (code, reply) pair.
        code, reply = next(iter(exc.recipients.values()), (451, b"refused"))
        return _by_code(int(code), reply)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _by_code(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SendResult(Outcome.FAILED, f"server does not support what the mail needs: {exc}")
    if isinstance(exc, (smtplib.SMTPException, OSError)):
        return SendResult(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
    return SendResult(Outcome.FAILED, f"{type(exc).__name__}: {exc}")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _by_code(code: int, reply: bytes | str) -> SendResult:
    detail = f"{code} {_text(reply)}".strip()
    return SendResult(Outcome.FAILED if 500 <= code < 600 else Outcome.RETRY, detail)


class SmtpConnection:
    """One reused SMTP connection, opened on first use and again after a disconnect."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(
        self,
        envelope_from: str,
        recipient: str,
        raw: bytes,
        *,
        before_final_dot: Callable[[], None] | None = None,
    ) -> None:
        """Send once; on a dropped connection reconnect and try once more. Raises on failure.

        `before_final_dot` runs after the whole message was transmitted and before the "."
        that asks the server to accept it: the sender waits there for the previous mail's
        result to be committed, so at most one accepted mail is ever unrecorded.
        """
        data = dot_stuffed(smtp_lines(raw))
        try:
            self._transaction(envelope_from, recipient, data, before_final_dot)
        except smtplib.SMTPServerDisconnected:
            # Idle connections get closed by servers; that is not the message's fault.
            self.close()
            self._transaction(envelope_from, recipient, data, before_final_dot)

    def _transaction(
        self,
        envelope_from: str,
        recipient: str,
        data: bytes,
        before_final_dot: Callable[[], None] | None,
    ) -> None:
        """MAIL, RCPT, DATA as smtplib.sendmail does, but with a pause before the final dot."""
        smtp = self._connection()
        options = ["BODY=8BITMIME"] if not data.isascii() and smtp.has_extn("8bitmime") else []
        try:
            code, reply = smtp.mail(envelope_from, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
            code, reply = smtp.docmd("DATA")
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            smtp.send(data)
            if before_final_dot is not None:
                before_final_dot()
            smtp.send(b".\r\n")
            code, reply = smtp.getreply()
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except smtplib.SMTPServerDisconnected:
            raise
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as exc:
            # 421: the server is closing the connection; otherwise the connection is fine
            # for the next mail once this transaction is reset.
            if _code_of(exc) == 421:
                self.close()
            else:
                _reset(smtp)
            raise
        except BaseException:
            # A timeout, or the pause before the dot failed: drop the connection, which
            # makes the server discard the half-sent mail instead of accepting it.
            self.abort()
            raise

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        s = self.settings
        try:
            if s.tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            smtp.ehlo()
            if s.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password)
            if smtp.sock is not None:
                # The final "." goes out as a small write of its own (see `send`); without
                # this, Nagle's algorithm holds it back until the server's delayed ACK.
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except smtplib.SMTPAuthenticationError as exc:
            raise SmtpConfigError(
                f"SMTP login as {s.user!r} at {s.host}:{s.port} refused: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except (ssl.SSLError, smtplib.SMTPNotSupportedError) as exc:
            raise SmtpConfigError(f"SMTP TLS with {s.host}:{s.port} failed: {exc}") from None
        self._smtp = smtp
        return smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def abort(self) -> None:
        """Drop the connection without QUIT (mid-transaction, QUIT would wait for DATA)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def dot_stuffed(data: bytes) -> bytes:
    """Double a leading "." on every line and end with CRLF (RFC 5321 4.5.2).

    `data` has CRLF line ends (`smtp_lines`), so every line but the first starts right after
    a CRLF and a plain replace does what smtplib's multi-line regex does, several times
    faster; the sender runs this over every mail while holding the interpreter.
    """
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _reset(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.rset()


def _code_of(exc: BaseException) -> int | None:
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return int(codes[0]) if codes else None
    return None


class SentFolder:
    """Files a copy of each sent mail in an IMAP folder; problems are logged, never raised."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._box: Any = None

    def append(self, raw: bytes) -> None:
        try:
            box = self._mailbox()
            box.append(raw, self.settings.sent_folder, dt=None, flag_set=["\\Seen"])
        except Exception as exc:  # a copy must never undo a sent mail
            log.warning(
                "sent copy not filed",
                extra={
                    "fields": {
                        "folder": self.settings.sent_folder,
                        "error": error_code(f"{type(exc).__name__}: {exc}"),
                    }
                },
            )
            self.close()

    def _mailbox(self) -> Any:
        if self._box is not None:
            return self._box
        from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted

        s = self.settings
        kinds: dict[str, Any] = {
            "ssl": MailBox,
            "starttls": MailBoxStartTls,
            "none": MailBoxUnencrypted,
        }
        box = kinds[s.tls](s.host, s.port, timeout=s.timeout)
        box.login(s.user, s.password)
        if not box.folder.exists(s.sent_folder):
            box.folder.create(s.sent_folder)
        self._box = box
        return box

    def close(self) -> None:
        box, self._box = self._box, None
        if box is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                box.logout()


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    not_recorded: int = 0  # sent or tried, but our claim had been taken over meanwhile
    skipped: int = 0  # claimed, but the lease ran too short to start sending
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.not_recorded + self.skipped


Progress = Callable[[ClaimedMail, Outcome], None]


def send_due(
    factory: sessionmaker[Session],
    settings: ServiceSettings,
    worker: str | None = None,
    *,
    max_messages: int | None = None,
    progress: Progress | None = None,
    on_accepted: Callable[[ClaimedMail], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Send what is due until nothing is (or `max_messages` were handled).

    `on_accepted` runs after the server accepted a mail and before that is recorded, the
    moment a crash would cost one duplicate (tests use it to crash a worker right there).
    `sleep` waits for the rate limit (tests with an accelerated clock pass a faster one).
    """
    sender = _Sender(factory, settings, worker or new_worker_id(), on_accepted)
    started = time.perf_counter()
    try:
        sender.run(max_messages, progress, sleep)
    finally:
        sender.close()
        sender.report.seconds = time.perf_counter() - started
    return sender.report


class _Sender:
    """One run of send_due: the loop, the SMTP connection, the database thread, the report.

    All database work runs, in order, on one thread of its own, so that recording mail N
    (a commit) overlaps with transmitting mail N+1. The server is only asked to accept
    N+1 (the final ".") once N is recorded, so a crash still costs at most one duplicate.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: ServiceSettings,
        worker: str,
        on_accepted: Callable[[ClaimedMail], None] | None,
    ) -> None:
        smtp = settings.smtp
        self.own = _OwnConnection(factory)
        self.worker = worker
        self.on_accepted = on_accepted
        self.batch_size = max(1, smtp.batch_size)
        self.per_minute = smtp.rate_limit_per_minute
        self.bucket = f"smtp:{smtp.host}"
        self.policy = RetryPolicy(max_attempts=smtp.max_attempts)
        self.lease = timedelta(seconds=smtp.lease_seconds)
        self.safety = min(LEASE_SAFETY, self.lease / 10)
        self.connection = SmtpConnection(smtp)
        self.sent_folder = SentFolder(settings.imap) if settings.imap.sent_folder else None
        self.report = SendReport()
        self.database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-db")
        self.last_result: Future[None] | None = None
        self.unsettled = 0  # accepted mails not yet settled (sending → sent)

    def run(
        self, max_messages: int | None, progress: Progress | None, sleep: Callable[[float], None]
    ) -> None:
        left = max_messages
        upcoming: Future[list[ClaimedMail] | None] | None = None
        while left is None or left > 0:
            if upcoming is None:
                upcoming = self._submit(self._claim, self._wanted(left))
            claimed, upcoming = upcoming.result(), None
            if claimed is None:  # the rate limit says wait; something is due
                sleep(self._submit(self._wait_for_token).result())
                continue
            if not claimed:
                return
            if left is not None:
                left -= len(claimed)
            try:
                upcoming = self._deliver_batch(claimed, progress, self._wanted(left))
            finally:
                self.last_result = self._submit(self._settle)
                self.unsettled = 0

    def _submit(self, task: Callable[..., _T], *args: Any) -> Future[_T]:
        """Run `task` on the database thread; a failure drops its connection."""
        return self.database.submit(self._guarded, task, *args)

    def _guarded(self, task: Callable[..., _T], *args: Any) -> _T:
        try:
            return task(*args)
        except BaseException:
            self.own.drop()  # the next transaction starts on a fresh connection
            raise

    def _wanted(self, left: int | None) -> int:
        return self.batch_size if left is None else min(self.batch_size, left)

    def close(self) -> None:
        try:
            self._wait_for_last_result()
        finally:
            with contextlib.suppress(Exception):  # closing; the result above is what counts
                self.database.submit(self.own.drop).result()
            self.database.shutdown(wait=True)
            self.connection.close()
            if self.sent_folder is not None:
                self.sent_folder.close()

    # ----------------------------------------------------- database thread: claims
    def _claim(self, wanted: int) -> list[ClaimedMail] | None:
        """Claim up to `wanted` rows within the rate limit; None: wait for a token."""
        granted = self._take_tokens(wanted)
        if granted == 0:
            with self.own.sessions()() as db:
                return None if has_due(db) else []
        claimed = claim_due(
            self.own.sessions(), self.worker, granted, lease=self.lease, policy=self.policy
        )
        self._give_back(granted - len(claimed))
        return claimed

    def _take_tokens(self, wanted: int) -> int:
        if self.per_minute <= 0:
            return wanted
        with transaction(self.own.sessions()) as db:
            return take_tokens(db, self.bucket, self.per_minute, wanted)

    def _give_back(self, unused: int) -> None:
        if self.per_minute > 0 and unused > 0:
            with transaction(self.own.sessions()) as db:
                return_tokens(db, self.bucket, self.per_minute, unused)

    def _wait_for_token(self) -> float:
        with self.own.sessions()() as db:
            # A floor keeps workers from hammering the bucket row; a cap keeps them lively.
            return min(5.0, max(0.05, seconds_until_token(db, self.bucket, self.per_minute)))

    # ------------------------------------------------------------ main thread: SMTP
    def _deliver_batch(
        self, claimed: list[ClaimedMail], progress: Progress | None, next_wanted: int
    ) -> Future[list[ClaimedMail] | None] | None:
        """Send a claimed batch; returns the claim of the next one if it was started.

        Without a rate limit the next batch is claimed halfway through this one, so the
        database thread does that while mails are transmitted instead of the sender
        waiting for it at the end of every batch.
        """
        upcoming: Future[list[ClaimedMail] | None] | None = None
        prefetch_at = len(claimed) // 2 if self.per_minute <= 0 and next_wanted > 0 else -1
        try:
            for position, mail in enumerate(claimed):
                if position == prefetch_at:
                    upcoming = self._submit(self._claim, next_wanted)
                try:
                    outcome = self._deliver(mail)
                except SmtpConfigError:
                    # Nothing will go out; hand the rest back (they count as an attempt).
                    refused = SendResult(Outcome.RETRY, "SMTP settings refused")
                    for rest in claimed[position:]:
                        self._submit_result(rest, refused)
                    self._hand_back(upcoming, refused)
                    upcoming = None
                    raise
                if progress is not None:
                    progress(mail, outcome)
        except BaseException:
            if upcoming is not None:
                # Stopping: the next batch stays claimed until its lease ends, as any
                # claimed mail does when its worker stops.
                upcoming.cancel()
            raise
        return upcoming

    def _hand_back(
        self, upcoming: Future[list[ClaimedMail] | None] | None, result: SendResult
    ) -> None:
        """Return an already claimed next batch, like the rest of the current one."""
        if upcoming is None:
            return
        with contextlib.suppress(Exception):  # the original error is what matters
            for mail in upcoming.result() or []:
                self._submit_result(mail, result)

    def _deliver(self, mail: ClaimedMail) -> Outcome:
        if mail.lease_until - self.safety < now():
            # Too late to start: leave it; it becomes due again when the lease ends.
            self.report.skipped += 1
            fields = _fields(mail, "skipped") | {"reason": "lease_nearly_over"}
            log.info("outbox mail", extra={"fields": fields})
            return Outcome.RETRY
        if mail.raw is None:
            result = SendResult(Outcome.FAILED, "no rendered message stored (purged?)")
        else:
            try:
                self.connection.send(
                    mail.envelope_from,
                    mail.recipient,
                    mail.raw,
                    before_final_dot=self._wait_for_last_result,
                )
                result = SendResult(Outcome.SENT, "accepted")
            except (SmtpConfigError, RecordingFailed):
                raise  # the current mail was not accepted; its row stays claimed
            except Exception as exc:  # classified, recorded, never lost
                result = classify(exc)
        if result.outcome is Outcome.SENT and self.on_accepted is not None:
            self.on_accepted(mail)
        self._submit_result(mail, result)
        return result.outcome

    def _wait_for_last_result(self) -> None:
        """Block until the previous result is committed; raise if recording it failed."""
        if self.last_result is None:
            return
        try:
            self.last_result.result()
        except Exception as exc:
            raise RecordingFailed(f"could not record a result in the database: {exc}") from exc

    def _submit_result(self, mail: ClaimedMail, result: SendResult) -> None:
        self.last_result = self._submit(self._record, mail, result)
        if result.outcome is Outcome.SENT:
            self.unsettled += 1
        if self.unsettled >= SETTLE_EVERY:
            # Settling in small groups lets the database thread do it while the next mails
            # are transmitted, instead of making the whole batch wait at its end.
            self._submit(self._settle)
            self.unsettled = 0

    # ---------------------------------------------------- database thread: results
    def _settle(self) -> None:
        with transaction(self.own.sessions()) as db:
            settle_accepted(db, self.worker)

    def _record(self, mail: ClaimedMail, result: SendResult) -> None:
        """Write one result in a transaction of its own (see workflows.sending).

        For accepted mail that is only the durable "accepted" mark; `_settle` writes the
        rest for the whole batch.
        """
        worker, report = self.worker, self.report
        if result.outcome is Outcome.SENT:
            # The commit every mail waits for: a bare connection, no Session to set up.
            with self.own.begin() as connection:
                recorded = record_accepted_on(connection, mail.id, worker)
            final = OutboundStatus.SENT
        else:
            with transaction(self.own.sessions()) as db:
                if result.outcome is Outcome.RETRY:
                    status = mark_retry(db, mail.id, worker, result.detail, policy=self.policy)
                    recorded, final = status is not None, status or OutboundStatus.PENDING
                else:
                    recorded = mark_failed(db, mail.id, worker, result.detail)
                    final = OutboundStatus.FAILED
        outcome = {
            OutboundStatus.SENT: "sent",
            OutboundStatus.PENDING: "retry",
            OutboundStatus.FAILED: "failed",
        }.get(final, str(final))
        if not recorded:
            report.not_recorded += 1
        elif final is OutboundStatus.SENT:
            report.sent += 1
        elif final is OutboundStatus.PENDING:
            report.retried += 1
            report.errors.append(f"{mail.id}: {result.detail}")
        else:
            report.failed += 1
            report.errors.append(f"{mail.id}: {result.detail}")
        error = "-" if result.outcome is Outcome.SENT else error_code(result.detail)
        # `recorded=false`: another worker took the claim over; the result was not written.
        fields = _fields(mail, outcome, error) | {"recorded": str(recorded).lower()}
        log.info("outbox mail", extra={"fields": fields})
        if recorded and final is OutboundStatus.SENT and self.sent_folder and mail.raw:
            # After recording: a failing copy must never cost a duplicate.
            self.sent_folder.append(mail.raw)


def _fields(mail: ClaimedMail, outcome: str, error: str = "-") -> dict[str, object]:
    return mail_log_fields(
        mail.id, mail.kind, mail.event_id, mail.recipient, outcome, mail.attempts, error
    )


class _OwnConnection:
    """The database thread's own connection, kept from one transaction to the next.

    Every mail costs a commit, and checking a connection out of the pool and back in (which
    rolls back on return) for each took about as long as the commit itself. Used only on
    the database thread; after any error it is dropped and the next transaction opens a
    fresh one, so a restarted database costs one failed transaction, as with the pool.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        bind = factory.kw.get("bind")
        self.engine = bind if isinstance(bind, Engine) else None
        self._connection: Connection | None = None
        self._sessions: sessionmaker[Session] | None = None

    def sessions(self) -> sessionmaker[Session]:
        """Sessions like the factory's, on this connection."""
        if self.engine is None:
            return self.factory
        if self._sessions is None:
            self._connection = self.engine.connect()
            options = {**self.factory.kw, "bind": self._connection}
            self._sessions = sessionmaker(class_=self.factory.class_, **options)
        return self._sessions

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """The connection in a transaction of its own (committed when the block ends)."""
        if self.engine is None:
            with transaction(self.factory) as db:
                yield db.connection()
            return
        self.sessions()
        assert self._connection is not None
        with self._connection.begin():
            yield self._connection

    def drop(self) -> None:
        connection, self._connection, self._sessions = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it may be what failed
                connection.close()
