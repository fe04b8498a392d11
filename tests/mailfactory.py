"""Realistic inbound mail as RFC 5322 bytes, for tests that go through the parser.

`reply()` builds what a Dutch invitee's mail client sends back: a Re: subject with the
``rsvp:`` marker, the plus-addressed Reply-To as recipient, the typed answer on top and the
quoted invitation below it, threading headers when given.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    AuditEntry,
    InboundMessage,
    OutboundMessage,
    Participant,
    ParticipantStatus,
)
from tests.factories import invite, make_event
from workflows.clock import set_clock
from workflows.inbound import process_inbound, process_understood, record_inbound
from workflows.tokens import plus_address, text_marker
from workflows.understanding import ReplyKind, Understanding

REPLY_ADDRESS = "aanmelden@wijkwijzer.example"
_counter = itertools.count(1)

QUOTED_INVITATION = """\
Geachte heer/mevrouw,

Graag nodigen wij u uit voor "Leren van Rotterdam Zuid: wethouders in de wijk" op
woensdag 1 februari 2023 in het Huis van de Wijk Zuidplein. Laat u ons weten of u komt?
U kunt ook een deelsessie kiezen: onderwijs, werk, wonen of veiligheid.

Met vriendelijke groet,
WijkWijzer namens BZK"""


def reply(
    *,
    to_token: str | None = None,
    from_: str,
    text: str,
    from_name: str = "",
    in_reply_to: str | None = None,
    subject: str | None = None,
    token_in_subject: bool = True,
    message_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> bytes:
    """A plain-text reply from `from_`, answering the invitation with token `to_token`."""
    msg = EmailMessage()
    n = next(_counter)
    domain = from_.rpartition("@")[2] or "example.org"
    msg["From"] = formataddr((from_name, from_)) if from_name else from_
    msg["To"] = plus_address(REPLY_ADDRESS, to_token) if to_token else REPLY_ADDRESS
    base_subject = subject or "Uitnodiging: Leren van Rotterdam Zuid"
    if to_token and token_in_subject:
        base_subject = f"{base_subject} [{text_marker(to_token)}]"
    msg["Subject"] = f"Re: {base_subject}"
    msg["Date"] = format_datetime(date or datetime(2023, 1, 10, 9, 30, tzinfo=UTC))
    msg["Message-ID"] = message_id or f"<reply-{n}-{abs(hash((from_, text))) % 10**8}@{domain}>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg["MIME-Version"] = "1.0"
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    quoted = "\n".join(f"> {line}" if line else ">" for line in QUOTED_INVITATION.splitlines())
    body = (
        f"{text}\n\n"
        f"Op di 10 jan 2023 om 09:00 schreef WijkWijzer namens BZK <{REPLY_ADDRESS}>:\n"
        f"{quoted}\n"
    )
    msg.set_content(body, charset="utf-8")
    return msg.as_bytes()


def auto_reply(*, to_token: str | None, from_: str) -> bytes:
    """An out-of-office answer (RFC 3834 Auto-Submitted)."""
    return reply(
        to_token=to_token,
        from_=from_,
        text="Ik ben afwezig tot en met 16 januari en lees mijn mail niet. "
        "Voor dringende zaken kunt u contact opnemen met het secretariaat.",
        subject="Afwezig: Uitnodiging: Leren van Rotterdam Zuid",
        extra_headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )


def bounce(*, recipient: str, original_token: str | None, permanent: bool = True) -> bytes:
    """A DSN (RFC 3464) from the receiving server for mail we sent to `recipient`."""
    n = next(_counter)
    status = "5.1.1" if permanent else "4.2.2"
    action = "failed" if permanent else "delayed"
    diagnostic = (
        "550 5.1.1 <{0}>: Recipient address rejected: User unknown"
        if permanent
        else "452 4.2.2 <{0}>: Mailbox full"
    ).format(recipient)
    marker = f"[{text_marker(original_token)}]" if original_token else ""
    boundary = f"bnd{n}"
    raw = f"""\
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.wijkwijzer.example>
To: {REPLY_ADDRESS}
Subject: Undelivered Mail Returned to Sender
Date: Tue, 10 Jan 2023 09:31:00 +0000
Message-ID: <bounce-{n}@mx.wijkwijzer.example>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.wijkwijzer.example.
I'm sorry to have to inform you that your message could not be delivered.

<{recipient}>: {diagnostic}

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.wijkwijzer.example

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--{boundary}
Content-Type: message/rfc822

From: WijkWijzer namens BZK <{REPLY_ADDRESS}>
To: {recipient}
Subject: Uitnodiging: Leren van Rotterdam Zuid {marker}
Message-ID: <orig-{n}@wijkwijzer.example>

Graag nodigen wij u uit. {marker}

--{boundary}--
"""
    return raw.replace("\n", "\r\n").encode("ascii")


# --------------------------------------------------------------------------- test harness


class ManualClock:
    """A clock that only moves when a test moves it (installed with workflows.clock.set_clock)."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


# Ten days before the example event's registration deadline (2023-01-25 23:59 local).
START = datetime(2023, 1, 10, 9, 0, tzinfo=UTC)


@contextmanager
def installed_clock(start: datetime = START) -> Iterator[ManualClock]:
    clock = ManualClock(start)
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


def deliver(db: Session, raw: bytes, *, mailbox: str = "INBOX") -> InboundMessage:
    """What the IMAP reader does with one message: record, process, commit."""
    row, new = record_inbound(db, raw, mailbox=mailbox, uidvalidity=1, uid=None)
    if new:
        process_inbound(db, row)
    db.commit()
    return row


def deliver_understood(
    db: Session, u: Understanding, *, from_: str, token: str | None
) -> InboundMessage:
    """Like `deliver`, but with the reading given instead of parsed (rules in isolation)."""
    raw = reply(to_token=token, from_=from_, text=u.reply_text or "(zie gestructureerde test)")
    row, new = record_inbound(db, raw, mailbox="INBOX", uidvalidity=1, uid=None)
    if new:
        u = dataclasses.replace(u, sender=u.sender or from_, token=u.token or token)
        process_understood(db, row, u)
    db.commit()
    return row


class World:
    """One event and its invitees in a test database, with helpers to reply and inspect."""

    def __init__(self, db: Session, clock: ManualClock, **event_overrides: Any) -> None:
        self.db = db
        self.clock = clock
        self.event = make_event(db, **event_overrides)
        self._n = 0
        db.commit()

    def invitee(self, name: str = "", domain: str | None = None) -> Participant:
        self._n += 1
        local = f"wethouder{self._n}"
        domain = domain or f"gemeente{self._n}.example"
        _inv, participant = invite(self.db, self.event, f"{local}@{domain}", name or local.title())
        self.db.commit()
        return participant

    def token(self, p: Participant) -> str:
        assert p.invitation is not None
        return p.invitation.token

    def say(
        self, p: Participant, text: str, *, from_: str | None = None, **kw: Any
    ) -> InboundMessage:
        raw = reply(to_token=self.token(p), from_=from_ or p.person.email, text=text, **kw)
        return deliver(self.db, raw)

    def tell(
        self, p: Participant, kind: ReplyKind, *, from_: str | None = None, **fields: Any
    ) -> InboundMessage:
        u = Understanding(kind=kind, **fields)
        return deliver_understood(self.db, u, from_=from_ or p.person.email, token=self.token(p))

    def status(self, p: Participant) -> ParticipantStatus:
        self.db.refresh(p)
        return p.status

    def statuses(self, *ps: Participant) -> list[ParticipantStatus]:
        return [self.status(p) for p in ps]

    def participants(self) -> list[Participant]:
        return list(
            self.db.scalars(
                select(Participant)
                .where(Participant.event_id == self.event.id)
                .order_by(Participant.id)
                .execution_options(populate_existing=True)
            )
        )

    def companions(self, p: Participant) -> list[Participant]:
        return [c for c in self.participants() if c.companion_of_id == p.id]

    def mails(self, kind: str | None = None, to: str | None = None) -> list[OutboundMessage]:
        query = select(OutboundMessage).where(OutboundMessage.event_id == self.event.id)
        if kind is not None:
            query = query.where(OutboundMessage.kind == kind)
        if to is not None:
            query = query.where(OutboundMessage.recipient == to.lower())
        return list(self.db.scalars(query.order_by(OutboundMessage.id)))

    def kinds_to(self, p: Participant) -> list[str]:
        return [m.kind for m in self.mails(to=p.person.email)]

    def snapshot(self) -> tuple[object, ...]:
        """Everything a replayed message must not change."""
        people = tuple(
            (p.id, p.status, p.waitlist_seq, p.session_id, p.offer_expires_at)
            for p in self.participants()
        )
        outbox = tuple(m.idempotency_key for m in self.mails())
        audits = self.db.scalar(select(func.count(AuditEntry.id)))
        return people, outbox, audits
