"""exact amounts of any scale (no BIGINT minor units), indexes for the exceptions list

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:20:00

``amount_minor`` held the amount as BIGINT minor units at its scale: 16 decimals of
a million overflow it. The amount's exact text is what every read sums and compares
now (recon.db_decimal), so the column goes. The four indexes serve the exceptions
list (whole, or by status, kind or assignee) in (opened_at, id) order; they make the
single-column indexes on project_id and status redundant, and every index is one
more write per published exception, so those two go.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

LIST_INDEXES = {
    'ix_exceptions_list': ['project_id', 'opened_at', 'id'],
    'ix_exceptions_list_status': ['project_id', 'status', 'opened_at', 'id'],
    'ix_exceptions_list_kind': ['project_id', 'kind', 'opened_at', 'id'],
    'ix_exceptions_list_assignee': ['project_id', 'assignee_id', 'opened_at', 'id'],
}


def upgrade():
    with op.batch_alter_table('exceptions', schema=None) as batch_op:
        batch_op.drop_column('amount_minor')
        batch_op.drop_index('ix_exceptions_project_id')
        batch_op.drop_index('ix_exceptions_status')
        for name, columns in LIST_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    with op.batch_alter_table('exceptions', schema=None) as batch_op:
        for name in LIST_INDEXES:
            batch_op.drop_index(name)
        batch_op.create_index('ix_exceptions_project_id', ['project_id'], unique=False)
        batch_op.create_index('ix_exceptions_status', ['status'], unique=False)
        # Minor units again where they fit a BIGINT; an amount past that fails the downgrade.
        batch_op.add_column(sa.Column('amount_minor', sa.BigInteger(), nullable=False,
                                      server_default='0'))
    op.execute(
        "UPDATE exceptions SET amount_minor = CAST(replace(amount, '.', '') AS BIGINT)"
    )
    with op.batch_alter_table('exceptions', schema=None) as batch_op:
        batch_op.alter_column('amount_minor', server_default=None)
