"""Server copies of mail whose Message-ID was anonymised are still found and deleted.

Some clients put the sender's address in the Message-ID; anonymising such a row replaces its
Message-ID with a hash. The copy on the server still carries the original header, so a
deletion retried after a failure (or one asked for by `privacy forget`, which does no
network IO) must find it by that hash. Against a real Dovecot on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import InboundMessage, InboundStatus
from devmail import MailStack
from jobs.imap_housekeeping import housekeeping
from jobs.imap_reader import run_once
from jobs.settings import ImapSettings
from tests.factories import invite, make_event
from tests.mailfactory import ManualClock, reply
from tests.test_housekeeping import USER, clock, imap, message_ids_in, on_server
from workflows.privacy import ANON_DOMAIN, forget_person

__all__ = ["clock", "imap"]  # fixtures shared with test_housekeeping

pytestmark = pytest.mark.integration

SENDER = "wethouder@gemeente-a.example"
# The sender's address inside the Message-ID, as some clients write it.
REVEALING_ID = f"<20230110093000.4711.{SENDER}>"
KEPT_ID = "<plain-4712@gemeente-b.example>"
# Past the example event's personal-data retention (365 days after 1 February 2023).
AFTER_PERSONAL_RETENTION = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def file_replies(sessions: sessionmaker[Session], stack: MailStack, imap: ImapSettings) -> None:
    """A reply whose Message-ID names its sender and one that does not, both filed by the
    reader (the second is from someone invited to nothing: it stays until its own time)."""
    with sessions() as db, db.begin():
        event = make_event(db)
        invitation, _ = invite(db, event, SENDER, "Anna de Wit")
        token = invitation.token
    with stack.mailbox(USER) as box:
        box.append(
            reply(to_token=token, from_=SENDER, text="Ja.", message_id=REVEALING_ID), "INBOX"
        )
    report = run_once(sessions, imap)
    assert report.fetched == 1 and report.unrecorded == 0
    with sessions() as db:
        row = db.scalars(select(InboundMessage)).one()
        assert row.message_id == REVEALING_ID and row.status is InboundStatus.PROCESSED
    assert REVEALING_ID in on_server(stack, imap)


def stored_message_id(sessions: sessionmaker[Session]) -> str:
    with sessions() as db:
        return db.scalars(select(InboundMessage.message_id)).one()


def test_a_failed_deletion_of_an_anonymised_message_is_retried_and_finds_the_copy(
    sessions: sessionmaker[Session],
    fresh_mailstack: MailStack,
    imap: ImapSettings,
    clock: ManualClock,
) -> None:
    file_replies(sessions, fresh_mailstack, imap)
    clock.set(AFTER_PERSONAL_RETENTION)
    unreachable = replace(imap, port=1, timeout=2)  # nothing listens there

    failed = housekeeping(sessions, unreachable)

    assert "server_error" in failed
    # The row no longer says whose it was; the copy on the server is still there.
    anonymised = stored_message_id(sessions)
    assert anonymised.endswith(f"@{ANON_DOMAIN}>") and SENDER not in anonymised
    assert REVEALING_ID in on_server(fresh_mailstack, imap)

    retried = housekeeping(sessions, imap)

    assert "server_error" not in retried
    assert (retried["deleted"], retried["found"], retried["not_found"]) == (1, 1, 0), retried
    assert REVEALING_ID not in on_server(fresh_mailstack, imap)
    with sessions() as db:
        assert db.scalars(select(InboundMessage.server_folder)).one() is None
    assert housekeeping(sessions, imap)["server_copies"] == 0


def test_the_copy_of_a_forgotten_persons_anonymised_message_goes_at_the_next_housekeeping(
    sessions: sessionmaker[Session],
    fresh_mailstack: MailStack,
    imap: ImapSettings,
    clock: ManualClock,
) -> None:
    file_replies(sessions, fresh_mailstack, imap)
    with fresh_mailstack.mailbox(USER) as box:  # someone else's mail, filed by hand
        box.append(f"Message-ID: {KEPT_ID}\r\nSubject: x\r\n\r\nhoi\r\n".encode(), "Processed")
    with sessions() as db, db.begin():
        forget_person(db, SENDER, actor="test")
    assert SENDER not in stored_message_id(sessions)

    result = housekeeping(sessions, imap)  # no retention has passed: only the forgotten copy

    assert (result["deleted"], result["not_found"]) == (1, 0), result
    assert message_ids_in(fresh_mailstack, "Processed") == [KEPT_ID]
