"""outbound bodies: the rendered bytes of outbound mail in a table of their own

Every claim and result of the outbox updates an `outbound_messages` row; with the ~17 KB
message inline, SQLite rewrote the whole message on each of those updates. The bytes move to
`outbound_bodies` (one row per message, deleted with it); `outbound_messages.raw` goes.

SQLite cannot drop a column in place on every version, so batch mode rebuilds the table
(copy, DROP, rename). That DROP would cascade into a table that already references
`outbound_messages`, so the bytes wait in a plain stash table meanwhile and
`outbound_bodies` is created after the rebuild.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 07:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STASH = "outbound_bodies_migration_stash"


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {STASH} AS "
        "SELECT id AS outbound_id, raw FROM outbound_messages WHERE raw IS NOT NULL"
    )
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_column('raw')
    op.create_table('outbound_bodies',
    sa.Column('outbound_id', sa.Integer(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['outbound_id'], ['outbound_messages.id'], name=op.f('fk_outbound_bodies_outbound_id_outbound_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('outbound_id', name=op.f('pk_outbound_bodies'))
    )
    op.execute(
        f"INSERT INTO outbound_bodies (outbound_id, raw) SELECT outbound_id, raw FROM {STASH}"
    )
    op.drop_table(STASH)


def downgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw', sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE outbound_messages SET raw = (SELECT b.raw FROM outbound_bodies b "
        "WHERE b.outbound_id = outbound_messages.id)"
    )
    op.drop_table('outbound_bodies')
