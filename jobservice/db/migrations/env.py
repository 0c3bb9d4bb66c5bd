"""Alembic's environment: migrations run on the engine jobservice hands it."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import jobservice.db.tables  # noqa: F401 - registers the tables on the metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
