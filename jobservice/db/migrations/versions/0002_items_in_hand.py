"""the job_items_in_hand table: items each worker is handling now

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 00:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_items_in_hand",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("partition_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=48), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("updated_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", "partition_id", "job_id"),
    )
    with op.batch_alter_table("job_items_in_hand", schema=None) as batch_op:
        batch_op.create_index("ix_job_items_in_hand_job", ["partition_id", "job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_items_in_hand", schema=None) as batch_op:
        batch_op.drop_index("ix_job_items_in_hand_job")
    op.drop_table("job_items_in_hand")
