"""db.engine: what every transaction relies on."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy.exc
from sqlalchemy import event, select

from db.engine import make_engine, make_sessionmaker, transaction


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
