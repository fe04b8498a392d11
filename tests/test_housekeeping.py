"""Purging server copies: after retention, no copy of a purged message stays on the server.

Against a real Dovecot (devmail) on SQLite and PostgreSQL: the reader files replies into
Processed/Review/Quarantine, our sent mail sits in Sent, retention passes, `housekeeping`
purges and deletes; what belongs to an event still within retention stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus
from devmail import MailStack
from jobs.imap_housekeeping import delete_server_copies, housekeeping, owned_folders
from jobs.imap_reader import run_once
from jobs.settings import ImapSettings
from tests.factories import event_config, invite
from tests.mailfactory import START, ManualClock, installed_clock, reply
from workflows.events import apply_event_config
from workflows.invitations import queue_invitations
from workflows.privacy import forget_person
from workflows.transitions import transition

pytestmark = pytest.mark.integration

USER = "aanmelden@wijkwijzer.example"


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with installed_clock(START) as c:
        yield c


@pytest.fixture
def imap(fresh_mailstack: MailStack) -> ImapSettings:
    return ImapSettings(
        host=fresh_mailstack.imap_host,
        port=fresh_mailstack.imap_port,
        user=USER,
        password=fresh_mailstack.password,
        timeout=20,
        sent_folder="Sent",
        max_message_bytes=200_000,
    )


def message_ids_in(stack: MailStack, folder: str) -> list[str]:
    with stack.mailbox(USER) as box:
        if not box.folder.exists(folder):
            return []
        box.folder.set(folder, readonly=True)
        return [
            (m.headers.get("message-id", ("",))[0]).strip()
            for m in box.fetch(mark_seen=False, headers_only=True, bulk=True)
        ]


def counts(stack: MailStack, imap: ImapSettings) -> dict[str, int]:
    return {f: len(message_ids_in(stack, f)) for f in owned_folders(imap)}


def set_up_mail(
    sessions: sessionmaker[Session], stack: MailStack, imap: ImapSettings
) -> tuple[list[str], list[str]]:
    """Two events, replies to both read by the reader, sent mail filed in Sent.

    Returns (Message-IDs that must be gone after the first event's retention,
    Message-IDs of the later event that must stay).
    """
    with sessions() as db, db.begin():
        first, _ = apply_event_config(db, event_config())
        base = event_config()
        later, _ = apply_event_config(
            db,
            replace(
                base,
                slug="later-event",
                starts_at=base.starts_at + timedelta(days=400),
                ends_at=base.ends_at + timedelta(days=400),
                registration_deadline=base.registration_deadline + timedelta(days=400),
            ),
        )
        a, _ = invite(db, first, "wethouder@gemeente-a.example", "A")
        b, _ = invite(db, first, "wethouder@gemeente-b.example", "B")
        c, _ = invite(db, later, "wethouder@gemeente-c.example", "C")
        tokens = {"a": a.token, "b": b.token, "c": c.token}
        queue_invitations(db, first)
        queue_invitations(db, later)
        sent = list(db.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))
        for row in sent:  # what the outbox job does, minus SMTP
            transition(db, row, OutboundStatus.SENDING, reason="test")
            transition(db, row, OutboundStatus.SENT, reason="test")
        sent_copies = [(row.event_id == first.id, row.message_id, row.raw or b"") for row in sent]
    replies = {
        "accept": reply(to_token=tokens["a"], from_="wethouder@gemeente-a.example", text="Ja."),
        "spoof": reply(to_token=tokens["b"], from_="iemand@elders.example", text="Ja, ik kom."),
        "later": reply(to_token=tokens["c"], from_="wethouder@gemeente-c.example", text="Ja."),
        # No Message-ID at all: the reader stores a hash of the bytes as its id.
        "no-id": b"From: wethouder@gemeente-a.example\r\nTo: aanmelden+"
        + tokens["a"].encode()
        + b"@wijkwijzer.example\r\nSubject: vraag\r\n\r\nWat is het adres?\r\n",
        # Oversized: quarantined with only its headers stored.
        "huge": reply(
            to_token=tokens["b"], from_="wethouder@gemeente-b.example", text="x " * 150_000
        ),
    }
    with stack.mailbox(USER) as box:
        for raw in replies.values():
            box.append(raw, "INBOX")
        box.folder.create("Sent")
        for _first, _mid, raw in sent_copies:
            box.append(raw, "Sent")
    report = run_once(sessions, imap)
    assert report.fetched == len(replies) and report.unrecorded == 0
    with sessions() as db:
        statuses = set(db.scalars(select(InboundMessage.status)))
    assert statuses == {InboundStatus.PROCESSED, InboundStatus.REVIEW, InboundStatus.QUARANTINED}
    first_sent = [mid for in_first, mid, _raw in sent_copies if in_first]
    later_sent = [mid for in_first, mid, _raw in sent_copies if not in_first]
    return first_sent, later_sent


def inbound_ids(sessions: sessionmaker[Session], *, purged: bool) -> set[str]:
    """Message-IDs of inbound rows whose bytes were purged (or not), as the reader stored them."""
    with sessions() as db:
        condition = InboundMessage.raw.is_(None) if purged else InboundMessage.raw.is_not(None)
        return set(db.scalars(select(InboundMessage.message_id).where(condition)))


def on_server(stack: MailStack, imap: ImapSettings) -> list[str]:
    return [mid for folder in owned_folders(imap) for mid in message_ids_in(stack, folder)]


def test_after_purge_no_copy_of_a_purged_message_remains(
    sessions: sessionmaker[Session],
    fresh_mailstack: MailStack,
    imap: ImapSettings,
    clock: ManualClock,
) -> None:
    first_sent, later_sent = set_up_mail(sessions, fresh_mailstack, imap)
    before = counts(fresh_mailstack, imap)
    every_inbound = inbound_ids(sessions, purged=False)
    assert sum(before.values()) == len(every_inbound) + len(first_sent) + len(later_sent)

    # Nothing is due yet: housekeeping changes nothing on the server.
    result = housekeeping(sessions, imap)
    assert result["server_copies"] == 0
    assert counts(fresh_mailstack, imap) == before

    # Past the first event's raw-message retention (30 days after it ended).
    clock.set(datetime(2023, 3, 10, 12, 0, tzinfo=UTC))
    result = housekeeping(sessions, imap)
    purged = inbound_ids(sessions, purged=True)
    kept = inbound_ids(sessions, purged=False)
    # Replies to the first event, including the one without a Message-ID (synthetic id,
    # found by the hash of its bytes); the later event's reply and the unmatched oversized
    # one are kept (privacy: unmatched mail lives as long as the events open when it came).
    assert len(purged) == 3 and len(kept) == 2
    assert any(mid.endswith("@rsvpmail.invalid>") for mid in purged)
    assert result["deleted"] == len(purged) + len(first_sent), result
    assert result["not_found"] == 0 and result["unsearchable"] == 0
    remaining = on_server(fresh_mailstack, imap)
    assert not set(remaining) & (purged | set(first_sent))
    assert sorted(remaining) == sorted([*kept, *later_sent])
    with sessions() as db:
        rows = db.scalars(select(InboundMessage).where(InboundMessage.raw.is_(None))).all()
        assert all(row.server_folder is None for row in rows)

    # Again: nothing left to do.
    again = housekeeping(sessions, imap)
    assert again["server_copies"] == 0
    assert sorted(on_server(fresh_mailstack, imap)) == sorted(remaining)


def test_a_failed_deletion_is_retried_at_the_next_run(
    sessions: sessionmaker[Session],
    fresh_mailstack: MailStack,
    imap: ImapSettings,
    clock: ManualClock,
) -> None:
    first_sent, later_sent = set_up_mail(sessions, fresh_mailstack, imap)
    before = counts(fresh_mailstack, imap)
    clock.set(datetime(2023, 3, 10, 12, 0, tzinfo=UTC))
    unreachable = replace(imap, port=1, timeout=2)  # nothing listens there
    for _run in range(2):  # the server stays down for two runs
        failed = housekeeping(sessions, unreachable)
        assert "server_error" in failed
        assert failed["server_copies"] == len(inbound_ids(sessions, purged=True)) + len(first_sent)
    purged = inbound_ids(sessions, purged=True)
    assert purged and counts(fresh_mailstack, imap) == before  # nothing deleted yet
    with sessions() as db:
        marked = db.scalars(
            select(OutboundMessage.message_id).where(OutboundMessage.sent_copy_pending)
        ).all()
    assert sorted(marked) == sorted(first_sent)
    # The next run finds every copy again by its row: inbound rows keep `server_folder` and
    # sent mail `sent_copy_pending` until the server confirmed the deletion.
    result = housekeeping(sessions, imap)
    assert "server_error" not in result
    assert result["deleted"] == len(purged) + len(first_sent)
    assert result["not_found"] == 0
    remaining = on_server(fresh_mailstack, imap)
    assert not set(remaining) & (purged | set(first_sent))
    assert set(later_sent) <= set(remaining)
    after = counts(fresh_mailstack, imap)
    assert sum(before.values()) - sum(after.values()) == len(purged) + len(first_sent)
    again = housekeeping(sessions, imap)
    assert again["server_copies"] == 0


def test_search_matches_the_whole_message_id_only(
    fresh_mailstack: MailStack, imap: ImapSettings
) -> None:
    """HEADER search finds substrings; a longer Message-ID that contains the purged one, and
    mail outside the folders we own, are never deleted."""
    target = "<abc.123@gemeente-a.example>"
    lookalike = "<abc.123@gemeente-a.example.nl>"
    bare = "abc.456@gemeente-a.example"
    with fresh_mailstack.mailbox(USER) as box:
        for folder in ("Processed", "Elsewhere"):
            box.folder.create(folder)
            for mid in (target, lookalike, bare):
                box.append(f"Message-ID: {mid}\r\nSubject: x\r\n\r\nhoi\r\n".encode(), folder)
    report = delete_server_copies(imap, [target, f"<{bare}>", "<nergens@x.example>"])
    assert report.deleted == 2
    assert report.not_found == 1
    assert sorted(message_ids_in(fresh_mailstack, "Processed")) == [lookalike]
    assert len(message_ids_in(fresh_mailstack, "Elsewhere")) == 3
    assert "Review" in report.missing_folders  # never created here: skipped, not an error


def test_copies_of_a_forgotten_person_go_at_the_next_housekeeping(
    sessions: sessionmaker[Session],
    fresh_mailstack: MailStack,
    imap: ImapSettings,
    clock: ManualClock,
) -> None:
    """`privacy forget` does no network IO; its rows tell housekeeping what to delete."""
    _first_sent, later_sent = set_up_mail(sessions, fresh_mailstack, imap)
    before = on_server(fresh_mailstack, imap)
    with sessions() as db, db.begin():
        report = forget_person(db, "wethouder@gemeente-c.example", actor="test")
    forgotten = {copy.message_id for copy in report.server_copies}
    # Their invitation in Sent and their reply in Processed; nothing of the other event.
    assert len(forgotten) == 2 and set(later_sent) & forgotten
    assert forgotten <= set(before)

    result = housekeeping(sessions, imap)  # retention of neither event has passed

    assert result["purge_changes"] == 0
    assert result["deleted"] == 2
    assert sorted(on_server(fresh_mailstack, imap)) == sorted(set(before) - forgotten)
    assert housekeeping(sessions, imap)["server_copies"] == 0
