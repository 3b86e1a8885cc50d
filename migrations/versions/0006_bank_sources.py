"""bank sources: statements, skipped lines, extra fields, optional key, profiles, duplicates per settings

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('source_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'name', name='uq_source_profile_name')
    )
    with op.batch_alter_table('source_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_profiles_project_id'), ['project_id'], unique=False)

    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settings_sha256', sa.String(length=64), server_default=sa.text("''"), nullable=False))
        batch_op.add_column(sa.Column('statements', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('skipped_lines', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('fields', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('has_key', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('profile_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint('uq_source_sha256', type_='unique')
        batch_op.create_unique_constraint('uq_source_content', ['project_id', 'sha256', 'settings_sha256'])
        batch_op.create_index(batch_op.f('ix_sources_profile_id'), ['profile_id'], unique=False)
        batch_op.create_foreign_key('fk_sources_profile_id', 'source_profiles', ['profile_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.drop_constraint('fk_sources_profile_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_sources_profile_id'))
        batch_op.drop_constraint('uq_source_content', type_='unique')
        batch_op.create_unique_constraint('uq_source_sha256', ['project_id', 'sha256'])
        batch_op.drop_column('profile_id')
        batch_op.drop_column('has_key')
        batch_op.drop_column('fields')
        batch_op.drop_column('skipped_lines')
        batch_op.drop_column('statements')
        batch_op.drop_column('settings_sha256')

    with op.batch_alter_table('source_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_profiles_project_id'))

    op.drop_table('source_profiles')
