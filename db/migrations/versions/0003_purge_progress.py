"""purge progress: what the privacy purge and housekeeping already did

`events.raw_purged_at` and `events.personal_purged_at` record when the purge last went
through an event's rows for each retention period, so the daily purge skips events where
nothing changed since. `outbound_messages.sent_copy_pending` marks sent mail whose bytes
were purged while a copy may still sit in the Sent folder; housekeeping clears it once the
server confirmed the deletion, so a failed deletion is retried.

Sent mail already purged before this revision may still have such a copy (a deletion that
failed, or `privacy forget`, which never deleted server copies): it is marked, and the next
housekeeping looks for it once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite a batch rebuild drops and recreates the
    # table, and that DROP would cascade into every table that references it.
    op.add_column('events', sa.Column('raw_purged_at', db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('events', sa.Column('personal_purged_at', db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('outbound_messages', sa.Column('sent_copy_pending', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        "UPDATE outbound_messages SET sent_copy_pending = true WHERE status = 'sent' "
        "AND NOT EXISTS (SELECT 1 FROM outbound_bodies b WHERE b.outbound_id = outbound_messages.id)"
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), for the same reason as above.
    op.drop_column('outbound_messages', 'sent_copy_pending')
    op.drop_column('events', 'personal_purged_at')
    op.drop_column('events', 'raw_purged_at')
