"""indexes for the exceptions list by amount and for a job's open records a side

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:30:00

``sort=largest`` / ``smallest`` ordered every open exception of the project by the
amount's size before taking a page (188 ms at 317k exceptions): an index on
(project_id, size, id) gives the page in order, largest first read backwards (the
tie-breaker of ``largest`` is the id descending, so one index serves both). The size is
recon.db_decimal's ``decimal_size``: a float on SQLite (enough to order), NUMERIC on
PostgreSQL. (job_id, side, match_id) finds a match's counterparts (the queue's detail:
86 ms on the index on job_id alone, which it replaces) and a job's open records a side
(the manual-match lists). A partial
index finds a pair's rejected suggestions, which the decisions read with the decided
exceptions (without it, a scan of the pair's exceptions: 100 ms at 317k).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

SIZE = {
    'sqlite': 'abs(CAST(amount AS REAL))',
    'postgresql': 'abs(CAST(amount AS NUMERIC))',
}


def upgrade():
    size = SIZE[op.get_bind().dialect.name]
    op.create_index('ix_exceptions_list_size', 'exceptions', ['project_id', sa.text(size), 'id'])
    op.create_index(
        'ix_exceptions_job_side',
        'exceptions',
        ['job_id', 'side', 'match_id'],
    )
    op.drop_index('ix_exceptions_job_id', table_name='exceptions')
    op.create_index(
        'ix_exceptions_rejected',
        'exceptions',
        ['project_id', 'pair_key'],
        sqlite_where=sa.text('rejected_pass IS NOT NULL'),
        postgresql_where=sa.text('rejected_pass IS NOT NULL'),
    )


def downgrade():
    op.drop_index('ix_exceptions_rejected', table_name='exceptions')
    op.create_index('ix_exceptions_job_id', 'exceptions', ['job_id'])
    op.drop_index('ix_exceptions_job_side', table_name='exceptions')
    op.drop_index('ix_exceptions_list_size', table_name='exceptions')
