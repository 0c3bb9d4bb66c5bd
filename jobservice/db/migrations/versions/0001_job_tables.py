"""the job, job_label and job_prerequisite tables

Revision ID: 0001
Revises:
Create Date: 2026-11-23 05:28:37.912096
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("partition_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=48), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("external_data", sa.Text(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("definition_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("percentage_complete", sa.Float(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("splitting_complete", sa.Boolean(), nullable=False),
        sa.Column("items_per_second", sa.Float(), nullable=True),
        sa.Column("eta_seconds", sa.Float(), nullable=True),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("prerequisite_job_ids", sa.JSON(), nullable=False),
        sa.Column("delay", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.BigInteger(), nullable=False),
        sa.Column("last_update_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partition_id", "job_id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_create_time"), ["create_time"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_status"), ["status"], unique=False)

    op.create_table(
        "job_label",
        sa.Column("partition_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=48), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("partition_id", "job_id", "label"),
    )
    with op.batch_alter_table("job_label", schema=None) as batch_op:
        batch_op.create_index(
            "ix_job_label_key_value", ["partition_id", "label", "value"], unique=False
        )

    op.create_table(
        "job_prerequisite",
        sa.Column("partition_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=48), nullable=False),
        sa.Column("prerequisite_job_id", sa.String(length=48), nullable=False),
        sa.PrimaryKeyConstraint("partition_id", "job_id", "prerequisite_job_id"),
    )
    with op.batch_alter_table("job_prerequisite", schema=None) as batch_op:
        batch_op.create_index(
            "ix_job_prerequisite_prerequisite",
            ["partition_id", "prerequisite_job_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("job_prerequisite", schema=None) as batch_op:
        batch_op.drop_index("ix_job_prerequisite_prerequisite")

    op.drop_table("job_prerequisite")
    with op.batch_alter_table("job_label", schema=None) as batch_op:
        batch_op.drop_index("ix_job_label_key_value")

    op.drop_table("job_label")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_status"))
        batch_op.drop_index(batch_op.f("ix_job_create_time"))

    op.drop_table("job")
