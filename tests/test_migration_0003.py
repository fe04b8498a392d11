"""Migration 0003 (purge progress) on a database that holds data, on SQLite and PostgreSQL.

Sent mail whose bytes were purged before 0003 may still have a copy in the Sent folder (a
deletion that failed, or `privacy forget`): the upgrade marks exactly those rows so that
housekeeping looks for them; mail with its bytes, or never sent, is not marked. Adding the
columns must not cost a byte of the outbound bodies (a SQLite table rebuild would cascade).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine, inspect, select

from db.engine import current_revision, head_revision, make_sessionmaker, upgrade
from db.models import OutboundBody, OutboundMessage
from tests.test_migrations import AT, OUTBOUND_0001, blank_engine, downgrade

__all__ = ["blank_engine"]  # the fixture, shared with test_migrations

# id → (status, bytes still stored?)
ROWS = {1: ("sent", False), 2: ("sent", True), 3: ("pending", True), 4: ("failed", False)}


# The tables as revision 0002 left them (the models describe head).
OUTBOUND_0002 = sa.table(
    "outbound_messages", *(sa.column(c.name, c.type) for c in OUTBOUND_0001.c if c.name != "raw")
)
BODIES_0002 = sa.table(
    "outbound_bodies", sa.column("outbound_id", sa.Integer), sa.column("raw", sa.LargeBinary)
)


def _fill_0002(engine: Engine) -> None:
    with engine.begin() as conn:
        for row_id, (status, has_body) in ROWS.items():
            values = {
                "id": row_id,
                "idempotency_key": f"key-{row_id}",
                "kind": "invitation",
                "recipient": f"person{row_id}@example.org",
                "message_id": f"<m{row_id}@example.org>",
                "essential": False,
                "status": status,
                "attempts": 0,
                "next_attempt_at": AT,
                "created_at": AT,
            }
            conn.execute(OUTBOUND_0002.insert().values(values))
            if has_body:
                conn.execute(
                    BODIES_0002.insert().values(outbound_id=row_id, raw=b"mail %d" % row_id)
                )


def test_upgrade_marks_purged_sent_mail_and_keeps_the_bodies(blank_engine: Engine) -> None:
    upgrade(blank_engine, "0002")
    _fill_0002(blank_engine)

    upgrade(blank_engine)

    assert current_revision(blank_engine) == head_revision()
    with make_sessionmaker(blank_engine)() as db:
        marked = db.scalars(
            select(OutboundMessage.id).where(OutboundMessage.sent_copy_pending.is_(True))
        ).all()
        assert marked == [1]
        bodies = dict(db.execute(select(OutboundBody.outbound_id, OutboundBody.raw)).all())
        assert bodies == {2: b"mail 2", 3: b"mail 3"}


def test_downgrade_to_0002_drops_the_columns_and_keeps_the_bodies(blank_engine: Engine) -> None:
    upgrade(blank_engine, "0002")
    _fill_0002(blank_engine)
    upgrade(blank_engine)

    downgrade(blank_engine, "0002")

    assert current_revision(blank_engine) == "0002"
    columns = {c["name"] for c in inspect(blank_engine).get_columns("outbound_messages")}
    assert "sent_copy_pending" not in columns
    event_columns = {c["name"] for c in inspect(blank_engine).get_columns("events")}
    assert not {"raw_purged_at", "personal_purged_at"} & event_columns
    with blank_engine.connect() as conn:
        bodies = dict(conn.execute(select(OutboundBody.outbound_id, OutboundBody.raw)).all())
    assert bodies == {2: b"mail 2", 3: b"mail 3"}
