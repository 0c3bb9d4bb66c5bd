"""What the job list's queries select: RSQL filters, status types, labels, sorts and pages.

The SQL runs against in-memory SQLite and against PostgreSQL, on the same jobs, and must give
the same answers on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlmodel import SQLModel, col

from jobservice.db.query import MAX_LIMIT, JobQuery, label_exist_clause
from jobservice.db.rsql import MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, MAX_FILTER_TERMS
from jobservice.db.store import JobStore
from jobservice.db.tables import JobLabelRow, JobRow
from jobservice.errors import InvalidRequestError
from tests.integration.database import postgres_schema

PARTITION = "p"

# id, name, status, percentageComplete, createTime, lastUpdateTime, labels
JOBS: list[tuple[str, str | None, str, float, int, int, dict[str, str]]] = [
    ("j1", "apple", "Active", 10, 1000, 9000, {"team": "red", "tier": "gold"}),
    ("j2", "Banana", "Completed", 100, 2000, 8000, {"team": "blue"}),
    ("j3", "50%_off", "Failed", 55.5, 3000, 7000, {"team": "Red"}),
    ("j4", "50%xoff", "Cancelled", 55.5, 4000, 6000, {"tier": "silver", "note": 'say "hi"'}),
    ("j5", "5000_off", "Waiting", 0, 5000, 5000, {"note": "two words"}),
    ("j6", None, "Paused", 20, 6000, 4000, {"team": "a\\b"}),
    ("j7", "apple", "Waiting", 0, 6000, 3000, {"team": "[x]?"}),
    ("j_8", "café", "Active", 99.5, 7000, 2000, {"tier": "gold"}),
]
ALL = {job[0] for job in JOBS}
# Another partition's jobs share ids, names and labels with ours, and must never show up.
OTHERS = [("j2", "apple", "Active", 10, 1000, 9000, {"team": "red"})]


def _rows(partition: str, jobs: list[Any]) -> list[Any]:
    rows: list[Any] = []
    for job_id, name, status, percentage, created, updated, labels in jobs:
        rows.append(
            JobRow(
                partition_id=partition,
                job_id=job_id,
                name=name,
                labels=labels,
                definition={},
                definition_hash="0" * 64,
                status=status,
                percentage_complete=percentage,
                create_time=created,
                last_update_time=updated,
            )
        )
        rows.extend(
            JobLabelRow(partition_id=partition, job_id=job_id, label=label, value=value)
            for label, value in labels.items()
        )
    return rows


def _fill(engine: Engine) -> None:
    tables = [SQLModel.metadata.tables[name] for name in ("job", "job_label")]
    SQLModel.metadata.create_all(engine, tables=tables)
    with engine.begin() as connection:
        for row in _rows(PARTITION, JOBS) + _rows("q", OTHERS):
            table = row.__table__
            connection.execute(table.insert().values(**row.model_dump()))


def _postgresql() -> Iterator[Engine]:
    with postgres_schema() as url:
        engine = create_engine(url)
        try:
            _fill(engine)
            # A linguistic collation, as a production database may have, would put "apple"
            # before "Banana"; the queries must still sort and compare like SQLite does.
            with engine.begin() as connection:
                for table, column in (("job", "name"), ("job_label", "value")):
                    connection.execute(
                        text(
                            f"ALTER TABLE {table} ALTER COLUMN {column}"
                            ' TYPE text COLLATE "en-x-icu"'
                        )
                    )
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "postgresql":
        yield from _postgresql()
        return
    engine = create_engine("sqlite://")
    _fill(engine)
    yield engine
    engine.dispose()


def job_ids(database: Engine, query: JobQuery, *, paged: bool = False) -> list[str]:
    statement = select(col(JobRow.job_id)).where(*query.where()).order_by(*query.order_by())
    if paged:
        statement = statement.limit(query.limit).offset(query.offset)
    with database.connect() as connection:
        return list(connection.execute(statement).scalars())


def filtered(database: Engine, rsql: str) -> set[str]:
    ids = job_ids(database, JobQuery(partition_id=PARTITION, filter=rsql))
    assert len(ids) == len(set(ids)), ids
    return set(ids)


def test_a_filter_at_its_bounds_is_read_and_runs(database: Engine) -> None:
    deepest = "(" * MAX_FILTER_DEPTH + "name==apple" + ")" * MAX_FILTER_DEPTH
    assert filtered(database, deepest) == {"j1", "j7"}
    assert filtered(database, ";".join(["labels.team==red"] * MAX_FILTER_TERMS)) == {"j1"}
    every = "id=in=(" + ",".join(f"j{n}" for n in range(MAX_FILTER_TERMS)) + ")"
    assert filtered(database, every) == ALL - {"j_8"}
    longest = "name==" + "a" * (MAX_FILTER_LENGTH - len("name=="))
    assert filtered(database, longest) == set()
    assert filtered(database, "labels." + "k" * 255 + "==x") == set()


@pytest.mark.parametrize(
    ("rsql", "expected"),
    [
        ("id==j1", {"j1"}),
        ("id!=j1", ALL - {"j1"}),
        ("name==apple", {"j1", "j7"}),
        ("name!=apple", ALL - {"j1", "j7"}),
        ("name==Apple", set()),
        ("id=ge=j7", {"j7", "j_8"}),
        ("name=gt=apple", {"j_8"}),
        ("name=lt=B", {"j3", "j4", "j5"}),
        ("name=le=Banana", {"j2", "j3", "j4", "j5"}),
        ("status=ge=Paused", {"j5", "j6", "j7"}),
        ("status==active", {"j1", "j_8"}),
        ("status!=Waiting", ALL - {"j5", "j7"}),
        ("status=in=(Completed,failed)", {"j2", "j3"}),
        ("status=out=(Waiting,Active)", {"j2", "j3", "j4", "j6"}),
        ("percentageComplete==55.5", {"j3", "j4"}),
        ("percentageComplete==1e2", {"j2"}),
        ("percentageComplete!=0", ALL - {"j5", "j7"}),
        ("percentageComplete=gt=20", {"j2", "j3", "j4", "j_8"}),
        ("percentageComplete>20", {"j2", "j3", "j4", "j_8"}),
        ("percentageComplete=ge=20", {"j2", "j3", "j4", "j6", "j_8"}),
        ("percentageComplete>=20", {"j2", "j3", "j4", "j6", "j_8"}),
        ("percentageComplete=lt=10", {"j5", "j7"}),
        ("percentageComplete<10", {"j5", "j7"}),
        ("percentageComplete=le=10", {"j1", "j5", "j7"}),
        ("percentageComplete<=10.0", {"j1", "j5", "j7"}),
        ("percentageComplete=in=(0,100)", {"j2", "j5", "j7"}),
        ("percentageComplete=out=(0,100)", {"j1", "j3", "j4", "j6", "j_8"}),
        ("id=in=(j1,j2,nope)", {"j1", "j2"}),
        ("id=out=(j1,j2)", ALL - {"j1", "j2"}),
        ("labels.team==red", {"j1"}),
        ("labels.team!=red", ALL - {"j1"}),
        ("labels.team=in=(red,blue)", {"j1", "j2"}),
        ("labels.team=out=(red,blue)", ALL - {"j1", "j2"}),
        ("labels.tier=gt=gold", {"j4"}),
        ("labels.team=lt=b", {"j3", "j6", "j7"}),
        ("labels.missing==x", set()),
        ("labels.a:b!=x", ALL),
    ],
)
def test_each_operator_selects_the_jobs_of_its_partition(
    database: Engine, rsql: str, expected: set[str]
) -> None:
    assert filtered(database, rsql) == expected


@pytest.mark.parametrize(
    ("rsql", "expected"),
    [
        ("name==50%_*", {"j3"}),
        ("name==*%x*", {"j4"}),
        ("name==*off", {"j3", "j4", "j5"}),
        ("name==5*_off", {"j3", "j5"}),
        ("name!=*off", {"j1", "j2", "j6", "j7", "j_8"}),
        ("name==B*", {"j2"}),
        ("name==b*", set()),
        ("name==caf*", {"j_8"}),
        ("name==*", ALL - {"j6"}),
        ("name!=*", {"j6"}),
        ("name=in=(Banana,ap*,*%_*)", {"j1", "j2", "j3", "j7"}),
        ("name=out=(Banana,ap*)", {"j3", "j4", "j5", "j6", "j_8"}),
        (r'labels.team=="a\\*"', {"j6"}),
        ("labels.team==[x]*", {"j7"}),
        ("labels.team==*?", {"j7"}),
        ("labels.team==?*", set()),
        ("labels.team==*", {"j1", "j2", "j3", "j6", "j7"}),
        ("labels.team==R*", {"j3"}),
        ("labels.team!=r*", ALL - {"j1"}),
    ],
)
def test_wildcards_match_any_run_and_nothing_else(
    database: Engine, rsql: str, expected: set[str]
) -> None:
    assert filtered(database, rsql) == expected


@pytest.mark.parametrize(
    ("rsql", "expected"),
    [
        ("status==Waiting,status==Active;name==apple", {"j5", "j7", "j1"}),
        ("status==Waiting or status==Active and name==apple", {"j5", "j7", "j1"}),
        ("(status==Waiting,status==Active);name==apple", {"j1", "j7"}),
        ("(status==Waiting or status==Active) and name==apple", {"j1", "j7"}),
        ("name==apple;(labels.tier==gold,percentageComplete<5)", {"j1", "j7"}),
        ("labels.team==red,labels.tier==gold;labels.team!=red", {"j1", "j_8"}),
        ("labels.note=='two words'", {"j5"}),
        ('labels.note=="two words"', {"j5"}),
        (r'labels.note=="say \"hi\""', {"j4"}),
        ("labels.note=='say \"hi\"'", {"j4"}),
        ("name=='50%_off'", {"j3"}),
    ],
)
def test_logic_and_quoting(database: Engine, rsql: str, expected: set[str]) -> None:
    assert filtered(database, rsql) == expected


@pytest.mark.parametrize(
    ("status_type", "expected"),
    [
        (None, ALL),
        ("All", ALL),
        ("NotCompleted", ALL - {"j2"}),
        ("Completed", {"j2"}),
        ("Inactive", {"j2", "j3", "j4"}),
        ("inactive", {"j2", "j3", "j4"}),
        ("NotFinished", {"j1", "j5", "j6", "j7", "j_8"}),
        ("NOTFINISHED", {"j1", "j5", "j6", "j7", "j_8"}),
    ],
)
def test_status_types(database: Engine, status_type: str | None, expected: set[str]) -> None:
    query = JobQuery(partition_id=PARTITION, status_type=status_type)
    assert set(job_ids(database, query)) == expected


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("j_", {"j_8"}), ("j1", {"j1"}), ("J", set()), ("j", ALL), (None, ALL)],
)
def test_job_id_starts_with(database: Engine, prefix: str | None, expected: set[str]) -> None:
    query = JobQuery(partition_id=PARTITION, job_id_starts_with=prefix)
    assert set(job_ids(database, query)) == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("tier", {"j1", "j4", "j_8"}),
        ("tier,note", {"j1", "j4", "j5", "j_8"}),
        (" tier , note ", {"j1", "j4", "j5", "j_8"}),
        ("missing,note", {"j4", "j5"}),
        ("missing", set()),
    ],
)
def test_label_exist_is_any_of(database: Engine, keys: str, expected: set[str]) -> None:
    query = JobQuery(partition_id=PARTITION, label_exist=keys)
    assert set(job_ids(database, query)) == expected


def test_label_exist_clause_alone_keeps_to_its_partition(database: Engine) -> None:
    statement = select(col(JobRow.job_id)).where(label_exist_clause("team", "q"))
    with database.connect() as connection:
        assert list(connection.execute(statement).scalars()) == ["j2"]


def test_every_parameter_together(database: Engine) -> None:
    query = JobQuery(
        partition_id=PARTITION,
        job_id_starts_with="j",
        status_type="NotFinished",
        label_exist="team,note",
        filter="percentageComplete<50",
        sort="labels.team:asc",
    )
    assert job_ids(database, query) == ["j7", "j6", "j1", "j5"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, ["j_8", "j6", "j7", "j5", "j4", "j3", "j2", "j1"]),
        ("createTime:desc", ["j_8", "j6", "j7", "j5", "j4", "j3", "j2", "j1"]),
        ("createTime:ASC", ["j1", "j2", "j3", "j4", "j5", "j6", "j7", "j_8"]),
        ("lastUpdateTime:asc", ["j_8", "j7", "j6", "j5", "j4", "j3", "j2", "j1"]),
        ("id:asc", ["j1", "j2", "j3", "j4", "j5", "j6", "j7", "j_8"]),
        ("id:desc", ["j_8", "j7", "j6", "j5", "j4", "j3", "j2", "j1"]),
        ("name:asc", ["j3", "j4", "j5", "j2", "j1", "j7", "j_8", "j6"]),
        ("name:desc", ["j_8", "j1", "j7", "j2", "j5", "j4", "j3", "j6"]),
        ("status:asc", ["j1", "j_8", "j4", "j2", "j3", "j6", "j5", "j7"]),
        ("percentageComplete:desc", ["j2", "j_8", "j3", "j4", "j6", "j1", "j5", "j7"]),
        ("labels.team:asc", ["j3", "j7", "j6", "j2", "j1", "j4", "j5", "j_8"]),
        ("labels.team:desc", ["j1", "j2", "j6", "j7", "j3", "j4", "j5", "j_8"]),
        ("labels.tier:desc", ["j4", "j1", "j_8", "j2", "j3", "j5", "j6", "j7"]),
    ],
)
def test_sorts_in_code_point_order_with_ties_by_id_and_missing_values_last(
    database: Engine, sort: str | None, expected: list[str]
) -> None:
    assert job_ids(database, JobQuery(partition_id=PARTITION, sort=sort)) == expected


@pytest.mark.parametrize("sort", [None, "name:asc", "labels.tier:desc", "percentageComplete:asc"])
def test_pages_cover_every_job_once(database: Engine, sort: str | None) -> None:
    # Given pages of 3 over sorts with ties (equal create times, names, labels, percentages)
    everything = job_ids(database, JobQuery(partition_id=PARTITION, sort=sort, limit=MAX_LIMIT))

    # When the list is read page by page
    pages = [
        job_ids(
            database,
            JobQuery(partition_id=PARTITION, sort=sort, limit=3, offset=offset),
            paged=True,
        )
        for offset in (0, 3, 6, 9)
    ]

    # Then the pages are the whole list, in order, with no job twice or missing
    assert [len(page) for page in pages] == [3, 3, 2, 0]
    assert [job for page in pages for job in page] == everything
    assert set(everything) == ALL


def test_a_selection_that_runs_too_long_is_refused_saying_so(database: Engine) -> None:
    # Given many jobs, and a store that gives a selection a thousandth of a second
    many = [
        (f"slow{n}", None, "Active", 0, n, n, {"team": f"t{n}", "tier": f"x{n}"})
        for n in range(3000)
    ]
    with database.begin() as connection:
        for row in _rows("slow", many):
            connection.execute(row.__table__.insert().values(**row.model_dump()))
    store = JobStore(database, selection_seconds=0.001)
    costly = ";".join(f"labels.team!=*{n}*{n}" for n in range(90))

    # Then a costly filter is refused, naming the limit, for a page, a count and a bulk action
    query = JobQuery(partition_id="slow", filter=costly)
    for select_jobs in (store.find, store.count, store.selected, store.status_counts):
        with pytest.raises(InvalidRequestError, match=r"took longer than 0\.001 s; narrow it"):
            select_jobs(query)
    # and a plain one still answers, with no limit left behind on the connection
    patient = JobStore(database)
    assert patient.count(JobQuery(partition_id="slow", filter="labels.team==t*")) == 3000
