"""limits of target pipes, shared by the jobs sending to them: the limit of each pipe, the
jobs that lately took a share of one, and the target pipe of each job

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as job:
        job.add_column(sa.Column("target_pipe", sa.Text(), nullable=True))
        job.create_index("ix_job_target_pipe", ["target_pipe"])
    op.create_table(
        "pipe_limit",
        sa.Column("pipe", sa.Text(), nullable=False),
        sa.Column("rate_limit", sa.Float(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pipe"),
    )
    op.create_table(
        "pipe_user",
        sa.Column("pipe", sa.Text(), nullable=False),
        sa.Column("pace", sa.Text(), nullable=False),
        sa.Column("own_limit", sa.Float(), nullable=True),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pipe", "pace"),
    )


def downgrade() -> None:
    op.drop_table("pipe_user")
    op.drop_table("pipe_limit")
    with op.batch_alter_table("job") as job:
        job.drop_index("ix_job_target_pipe")
        job.drop_column("target_pipe")
