"""event indexes: an event's mail and audit entries without scanning whole tables

The daily purge asks per event whether anything is new (`workflows.privacy._changed_since`)
and then goes through the event's rows; the organiser's views list one event's outbox,
review queue and audit trail. `event_id` had no index on `inbound_messages`,
`outbound_messages` or `audit_entries`, so each of those read the whole table.

- `inbound_messages`: `event_id`, and `invitation_id`, since an event's mail is
  `event_id = ? OR invitation_id IN (...)` and an OR uses indexes only when both sides have one.
- `outbound_messages`: `event_id` (it never changes, so status updates do not touch it).
- `audit_entries`: `(event_id, at)` for "new since" and the newest-first trail, and
  `inbound_message_id`, partial (`IS NOT NULL`): the outbox's entries name no message.

Plain CREATE INDEX (not batch mode), as in 0003: no table is rebuilt on SQLite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES_A_MESSAGE = sa.text("inbound_message_id IS NOT NULL")


def upgrade() -> None:
    op.create_index('ix_inbound_messages_event_id', 'inbound_messages', ['event_id'], unique=False)
    op.create_index('ix_inbound_messages_invitation_id', 'inbound_messages', ['invitation_id'], unique=False)
    op.create_index('ix_outbound_messages_event_id', 'outbound_messages', ['event_id'], unique=False)
    op.create_index('ix_audit_entries_event_at', 'audit_entries', ['event_id', 'at'], unique=False)
    op.create_index(
        'ix_audit_entries_inbound_message_id', 'audit_entries', ['inbound_message_id'], unique=False,
        sqlite_where=NAMES_A_MESSAGE, postgresql_where=NAMES_A_MESSAGE,
    )


def downgrade() -> None:
    op.drop_index('ix_audit_entries_inbound_message_id', table_name='audit_entries')
    op.drop_index('ix_audit_entries_event_at', table_name='audit_entries')
    op.drop_index('ix_outbound_messages_event_id', table_name='outbound_messages')
    op.drop_index('ix_inbound_messages_invitation_id', table_name='inbound_messages')
    op.drop_index('ix_inbound_messages_event_id', table_name='inbound_messages')
