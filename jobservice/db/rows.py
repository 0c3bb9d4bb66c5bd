"""One job's row, read with SQLAlchemy Core alone.

Reading a job is what ``jobservice status`` does, and loading the ORM mapping of the tables
(:mod:`jobservice.db.tables`) would cost it a sixth of its time. The row comes back as a
mapping of column names to values, its JSON and boolean columns decoded as the mapped row's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Engine, text

_JOB = text("SELECT * FROM job WHERE partition_id = :partition_id AND job_id = :job_id").columns(
    labels=JSON,
    definition=JSON,
    failures=JSON,
    prerequisite_job_ids=JSON,
    splitting_complete=Boolean,
)


def job_row(engine: Engine, *, partition_id: str, job_id: str) -> dict[str, Any] | None:
    """The job's row, column names to values; None when there is none."""
    with engine.connect() as connection:
        found = connection.execute(_JOB, {"partition_id": partition_id, "job_id": job_id})
        row = found.mappings().first()
    return None if row is None else dict(row)
