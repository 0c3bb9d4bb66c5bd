"""the job_failed_item table: every failed item of a job, and what sends it again; a job's
redrives

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_failed_item",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partition_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=48), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("failure_time", sa.BigInteger(), nullable=False),
        sa.Column("failure_source", sa.Text(), nullable=False),
        sa.Column("failure_message", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("item", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job_failed_item", schema=None) as batch_op:
        batch_op.create_index(
            "ux_job_failed_item_task",
            ["partition_id", "job_id", "round", "task_id"],
            unique=True,
        )
        batch_op.create_index(
            "ix_job_failed_item_listing",
            ["partition_id", "job_id", "round", "state", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_job_failed_item_position",
            ["partition_id", "job_id", "round", "position"],
            unique=False,
        )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("redrive_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("last_redrive_time", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("last_redrive_time")
        batch_op.drop_column("redrive_count")
    with op.batch_alter_table("job_failed_item", schema=None) as batch_op:
        batch_op.drop_index("ix_job_failed_item_position")
        batch_op.drop_index("ix_job_failed_item_listing")
        batch_op.drop_index("ux_job_failed_item_task")
    op.drop_table("job_failed_item")
