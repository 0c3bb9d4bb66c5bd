"""Which schema revision the job database must be at, and what to say when it is not.

Plain values and messages, without SQLAlchemy: each way of reading the database
(:mod:`jobservice.db.engine`, :mod:`jobservice.db.rows`) checks the revision with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jobservice.errors import UnavailableError

SCHEMA_REVISION = "0007"
"""The migration this version's tables are at: the head of ``db/migrations/versions`` (a unit
test holds the two together)."""
VERSION_TABLE = "alembic_version"
"""Where Alembic records the revision a database is at."""


def only_revision(revisions: Sequence[object]) -> str | None:
    """The one revision the version table holds; None when it holds none."""
    if len(revisions) > 1:
        # A linear history leaves one row; more means branches this version does not know.
        raise RuntimeError(f"{VERSION_TABLE} holds {len(revisions)} revisions, not one")
    return str(revisions[0]) if revisions else None


def check_revision(read: Callable[[], str | None], where: str) -> None:
    """Refuse to work on the database at ``where`` unless ``read`` finds this version's
    schema revision there."""
    try:
        current = read()
    except Exception as exc:
        raise UnavailableError(f"the job database at {where} cannot be reached: {exc}") from None
    if current != SCHEMA_REVISION:
        raise UnavailableError(
            f"the job database is at schema revision {current or 'none'}, this version needs "
            f"{SCHEMA_REVISION}; run `jobservice db upgrade`"
        )
