"""the job_paused_pipe table: results held while a job is paused, and results dropped

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 06:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_paused_pipe",
        sa.Column("partition_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=48), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("updated_time", sa.BigInteger(), nullable=False),
        sa.Column("job_deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("partition_id", "job_id"),
    )
    with op.batch_alter_table("job_paused_pipe", schema=None) as batch_op:
        batch_op.create_index(
            "ix_job_paused_pipe_held",
            ["held"],
            unique=False,
            sqlite_where=sa.text("held <> 0"),
            postgresql_where=sa.text("held <> 0"),
        )


def downgrade() -> None:
    with op.batch_alter_table("job_paused_pipe", schema=None) as batch_op:
        batch_op.drop_index("ix_job_paused_pipe_held")
    op.drop_table("job_paused_pipe")
