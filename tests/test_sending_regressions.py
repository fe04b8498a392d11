"""Defects found in review of the batch settle and the SQLite BEGIN, kept as regressions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy.exc
import time_machine
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker, transaction
from db.models import AuditEntry, Invitation, InvitationStatus, OutboundStatus
from tests.factories import invite, make_event
from tests.test_sending import _queue, _rows
from workflows.outbox import MailKind
from workflows.sending import claim_due, record_accepted, settle_accepted
from workflows.transitions import transition

START = datetime(2023, 1, 9, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
def traveller() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as t:
        yield t


def test_settling_two_accepted_mails_of_one_invitation_in_one_batch(
    db: Session, sessions: sessionmaker[Session], traveller: time_machine.Traveller
) -> None:
    """A re-sent invitation (`invitation:<id>:<n>`) may go out in the same batch as an earlier
    mail of the same invitation (a bounce re-queued it while that one was still pending).
    The invitation moves to sent once; moving it twice would fail the second compare-and-set
    and roll back the whole settle (and stop the sender)."""
    event = make_event(db)
    invitation, _ = invite(db, event, "j.meijer@bergveld.example")
    transition(db, invitation, InvitationStatus.QUEUED, reason="as queue_invitations leaves it")
    key = f"invitation:{invitation.id}"
    first = _queue(db, event, invitation.person, key, kind=MailKind.INVITATION).id
    again = _queue(db, event, invitation.person, f"{key}:1", kind=MailKind.INVITATION).id
    db.commit()
    assert len(claim_due(sessions, "w", 10, lease=LEASE)) == 2
    traveller.shift(timedelta(seconds=3))
    for outbound_id in (first, again):
        with sessions() as db2, db2.begin():
            assert record_accepted(db2, outbound_id, "w")

    with sessions() as db2, db2.begin():
        assert settle_accepted(db2, "w") == 2

    rows = _rows(sessions)
    assert rows[first].status == OutboundStatus.SENT
    assert rows[again].status == OutboundStatus.SENT
    with sessions() as db2:
        assert db2.get(Invitation, invitation.id).status == InvitationStatus.SENT  # type: ignore[union-attr]
        moves = db2.scalars(
            select(AuditEntry.new_status).where(
                AuditEntry.machine == "invitation", AuditEntry.entity_id == invitation.id
            )
        ).all()
        assert list(moves).count("sent") == 1


def test_sqlite_lock_timeout_at_begin_is_a_sqlalchemy_operational_error(
    backend: str, database_url: str
) -> None:
    """A transaction that cannot get SQLite's write lock fails at BEGIN IMMEDIATE. Callers
    tell "database busy, retry" from "this message is bad" by catching
    sqlalchemy.exc.OperationalError (jobs/imap_reader.py `_ingest`, workflows/inbound.py),
    so the driver's own error must not escape unwrapped: the reader would quarantine a good
    reply instead of retrying it."""
    if backend != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's")
    engine = make_engine(database_url)

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with (
            pytest.raises(sqlalchemy.exc.OperationalError),
            transaction(make_sessionmaker(engine)) as db,
        ):
            db.execute(select(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()
