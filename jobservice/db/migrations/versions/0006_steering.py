"""a job's steering in its row (rate limit, in-flight window, failure tolerance, priority, its
recent rate), and the pace table that spaces the items of rate-limited jobs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as job:
        job.add_column(sa.Column("rate_limit", sa.Float(), nullable=True))
        job.add_column(sa.Column("in_flight_window", sa.Integer(), nullable=True))
        job.add_column(sa.Column("failure_tolerance", sa.Text(), nullable=True))
        job.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="3"))
        job.add_column(sa.Column("recent_items_per_second", sa.Float(), nullable=True))
    op.create_table(
        "pace",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("next_free", sa.Float(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=True),
        sa.Column("updated_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("pace")
    with op.batch_alter_table("job") as job:
        for column in (
            "recent_items_per_second",
            "priority",
            "failure_tolerance",
            "in_flight_window",
            "rate_limit",
        ):
            job.drop_column(column)
