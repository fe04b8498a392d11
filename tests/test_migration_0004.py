"""Migration 0004 (event indexes), and that the purge's per-event queries use them.

On SQLite and PostgreSQL: upgrading a database that holds data creates the indexes (the
audit one partial, for entries that name a message) and keeps every row; downgrading drops
exactly those. On SQLite, whose planner does not depend on table sizes for these queries,
the statements the purge runs per event are checked with EXPLAIN QUERY PLAN: none of them
reads a whole table of mail or audit entries any more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.orm import Session

from db.engine import current_revision, head_revision, upgrade
from db.models import AuditEntry
from db.types import UTCDateTime
from tests.factories import invite, make_event
from tests.test_migrations import AT, blank_engine, downgrade
from workflows.clock import now
from workflows.privacy import PurgeReport, _anonymise_event, _changed_since, retention_of

__all__ = ["blank_engine"]  # the fixture, shared with test_migrations

NEW_INDEXES = {
    "inbound_messages": {
        "ix_inbound_messages_event_id": ["event_id"],
        "ix_inbound_messages_invitation_id": ["invitation_id"],
    },
    "outbound_messages": {"ix_outbound_messages_event_id": ["event_id"]},
    "audit_entries": {
        "ix_audit_entries_event_at": ["event_id", "at"],
        "ix_audit_entries_inbound_message_id": ["inbound_message_id"],
    },
}
AUDIT_0003 = sa.table(
    "audit_entries",
    sa.column("id", sa.Integer),
    sa.column("at", UTCDateTime()),
    sa.column("actor", sa.String),
    sa.column("machine", sa.String),
    sa.column("entity_id", sa.BigInteger),
    sa.column("new_status", sa.String),
    sa.column("reason", sa.Text),
)
TABLES = ("inbound_messages", "outbound_messages", "audit_entries")


def indexes(engine: Engine, table: str) -> dict[str, dict[str, object]]:
    return {str(ix["name"]): dict(ix) for ix in inspect(engine).get_indexes(table)}


def _fill_0003(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            AUDIT_0003.insert(),
            [
                {
                    "id": n,
                    "at": AT,
                    "actor": "system",
                    "machine": "participant",
                    "entity_id": n,
                    "new_status": "registered",
                    "reason": f"entry {n}",
                }
                for n in range(1, 6)
            ],
        )


def test_upgrade_creates_the_event_indexes_and_keeps_the_rows(blank_engine: Engine) -> None:
    upgrade(blank_engine, "0003")
    _fill_0003(blank_engine)
    before = {t: set(indexes(blank_engine, t)) for t in NEW_INDEXES}
    assert not any(set(names) & before[t] for t, names in NEW_INDEXES.items())

    upgrade(blank_engine)

    assert current_revision(blank_engine) == head_revision()
    for table, wanted in NEW_INDEXES.items():
        found = indexes(blank_engine, table)
        assert {name: found[name]["column_names"] for name in wanted} == wanted
    partial = indexes(blank_engine, "audit_entries")["ix_audit_entries_inbound_message_id"]
    where = partial.get("dialect_options", {})
    assert any("inbound_message_id IS NOT NULL" in str(v) for v in where.values()), partial
    with blank_engine.connect() as conn:
        reasons = conn.execute(select(AuditEntry.reason).order_by(AuditEntry.id)).scalars().all()
    assert reasons == [f"entry {n}" for n in range(1, 6)]


def test_downgrade_to_0003_drops_only_the_new_indexes(blank_engine: Engine) -> None:
    upgrade(blank_engine, "0003")
    _fill_0003(blank_engine)
    at_0003 = {t: set(indexes(blank_engine, t)) for t in NEW_INDEXES}
    upgrade(blank_engine)

    downgrade(blank_engine, "0003")

    assert current_revision(blank_engine) == "0003"
    assert {t: set(indexes(blank_engine, t)) for t in NEW_INDEXES} == at_0003
    with blank_engine.connect() as conn:
        assert conn.scalar(select(sa.func.count()).select_from(AUDIT_0003)) == 5


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[tuple[str, object]]]:
    """Every SELECT the engine runs while the test is in its body."""
    seen: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, params: object, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    yield seen
    event.remove(engine, "before_cursor_execute", capture)


def full_scans(db: Session, captured: list[tuple[str, object]]) -> list[str]:
    """Plan lines of the captured statements that read a whole mail or audit table."""
    conn = db.connection()
    found = []
    for statement, params in captured:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()  # type: ignore[arg-type]
        found += [
            f"{row[3]}  <-  {' '.join(statement.split())[:200]}"
            for row in plan
            if any(str(row[3]).startswith(f"SCAN {table}") for table in TABLES)
        ]
    return found


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_purges_per_event_queries_use_the_indexes(
    db: Session, statements: list[tuple[str, object]]
) -> None:
    event_row = make_event(db)
    invite(db, event_row, "wethouder@gemeente-a.example", "Anna de Wit")
    db.commit()
    statements.clear()

    # Nothing is newer than tomorrow: every one of its queries runs and finds nothing.
    assert not _changed_since(db, event_row.id, now() + timedelta(days=1))
    _anonymise_event(db, retention_of(event_row), PurgeReport())

    read = {m.group(1) for s, _ in statements for m in re.finditer(r"\bFROM\s+(\w+)", s)}
    assert read >= set(TABLES)
    assert full_scans(db, statements) == []
    db.rollback()
