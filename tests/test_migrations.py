"""Migrations on databases that already hold data, on SQLite and PostgreSQL.

0002 moves the rendered bytes of outbound mail from `outbound_messages.raw` into
`outbound_bodies`. These tests start from a database at 0001 with rows in it, upgrade to
head and check that every byte arrived, that the schema is what the models describe, and
that downgrading puts the bytes back where 0001 kept them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from db.engine import current_revision, head_revision, make_engine, make_sessionmaker, upgrade
from db.models import Base, OutboundBody, OutboundMessage
from db.types import UTCDateTime
from tests.conftest import create_pg_database, drop_pg_database, pg_url

AT = datetime(2023, 1, 10, 9, 0, tzinfo=UTC)

# outbound_messages as revision 0001 created it (the models describe head, not 0001).
OUTBOUND_0001 = sa.table(
    "outbound_messages",
    sa.column("id", sa.Integer),
    sa.column("idempotency_key", sa.String),
    sa.column("kind", sa.String),
    sa.column("recipient", sa.String),
    sa.column("message_id", sa.String),
    sa.column("raw", sa.LargeBinary),
    sa.column("essential", sa.Boolean),
    sa.column("status", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("next_attempt_at", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
)


def _message(number: int) -> bytes:
    """A message-sized body with every byte value in it, different for each row."""
    head = f"Subject: mail {number}\r\n\r\n".encode()
    return head + bytes(range(256)) * 68 + number.to_bytes(4, "big")


# Row id → stored bytes; None is a message whose bytes were already purged.
ROWS: dict[int, bytes | None] = {1: _message(1), 2: None, 3: _message(3), 4: b""}


@pytest.fixture
def blank_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An empty database without any migration applied."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield engine
        engine.dispose()
        return
    name = f"rsvpmail_m_{uuid.uuid4().hex[:12]}"
    create_pg_database(name)
    engine = make_engine(pg_url(name))
    try:
        yield engine
    finally:
        engine.dispose()
        drop_pg_database(name)


def _fill_0001(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            OUTBOUND_0001.insert(),
            [
                {
                    "id": row_id,
                    "idempotency_key": f"key-{row_id}",
                    "kind": "invitation",
                    "recipient": f"person{row_id}@example.org",
                    "message_id": f"<m{row_id}@example.org>",
                    "raw": raw,
                    "essential": False,
                    "status": "sent" if raw is None else "pending",
                    "attempts": 0,
                    "next_attempt_at": AT,
                    "created_at": AT,
                }
                for row_id, raw in ROWS.items()
            ],
        )


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    from db.engine import alembic_config

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def test_upgrade_from_0001_keeps_every_byte(blank_engine: Engine) -> None:
    upgrade(blank_engine, "0001")
    _fill_0001(blank_engine)

    upgrade(blank_engine)

    assert current_revision(blank_engine) == head_revision()
    columns = {c["name"] for c in inspect(blank_engine).get_columns("outbound_messages")}
    assert "raw" not in columns
    with make_sessionmaker(blank_engine)() as db:
        bodies = dict(db.execute(select(OutboundBody.outbound_id, OutboundBody.raw)).all())
        assert bodies == {row_id: raw for row_id, raw in ROWS.items() if raw is not None}
        through_model = {row.id: row.raw for row in db.scalars(select(OutboundMessage))}
        assert through_model == ROWS
        kept = db.scalars(
            select(OutboundMessage.id)
            .where(OutboundMessage.raw.is_not(None))
            .order_by(OutboundMessage.id)
        ).all()
        assert kept == [row_id for row_id, raw in ROWS.items() if raw is not None]


def test_schema_after_upgrade_is_what_the_models_describe(blank_engine: Engine) -> None:
    upgrade(blank_engine, "0001")
    _fill_0001(blank_engine)
    upgrade(blank_engine)
    with blank_engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_bodies_go_with_their_message_after_the_rebuild(blank_engine: Engine) -> None:
    """The foreign key (ON DELETE CASCADE) survives SQLite's table rebuild."""
    upgrade(blank_engine, "0001")
    _fill_0001(blank_engine)
    upgrade(blank_engine)
    with make_sessionmaker(blank_engine)() as db, db.begin():
        db.execute(sa.delete(OutboundMessage).where(OutboundMessage.id == 1))
    with make_sessionmaker(blank_engine)() as db:
        remaining = set(db.scalars(select(OutboundBody.outbound_id)))
    assert remaining == {row_id for row_id, raw in ROWS.items() if raw is not None} - {1}


def test_downgrade_to_0001_puts_the_bytes_back(blank_engine: Engine) -> None:
    upgrade(blank_engine, "0001")
    _fill_0001(blank_engine)
    upgrade(blank_engine)

    downgrade(blank_engine, "0001")

    assert current_revision(blank_engine) == "0001"
    assert "outbound_bodies" not in inspect(blank_engine).get_table_names()
    with blank_engine.connect() as conn:
        stored = dict(conn.execute(select(OUTBOUND_0001.c.id, OUTBOUND_0001.c.raw)).all())
    assert stored == ROWS
