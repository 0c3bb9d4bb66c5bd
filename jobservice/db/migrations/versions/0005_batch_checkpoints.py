"""the job_batch_checkpoint table: where each batch of a stopped job stood, for a redrive

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 12:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_batch_checkpoint",
        sa.Column("partition_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=48), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("written_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partition_id", "job_id", "path"),
    )


def downgrade() -> None:
    op.drop_table("job_batch_checkpoint")
