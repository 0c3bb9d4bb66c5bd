"""scripts/ensure-services sets up a bare machine's PostgreSQL for the tests.

Against a PostgreSQL cluster of its own, made fresh the way Debian makes one (the socket for the
postgres user only, passwords over TCP), on a port of its own: the machine's cluster, which
other tests use, is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.services import service_missing

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "ensure-services"
PORT = 54329
DATA = Path("/tmp/jobservice-ensure-services-cluster")  # the postgres user reaches /tmp
SOCKETS = "/var/run/postgresql"
LOOPBACK = {"", "127.0.0.1", "::1"}  # pg_hba_file_rules' address: none for the socket


def as_postgres(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, command)],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def postgres_binaries() -> Path:
    if os.geteuid() != 0:
        service_missing("the test makes a PostgreSQL cluster as the postgres user: run it as root")
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()],
    )
    if not found:
        service_missing("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    return found[-1].parent


def stop(bin_dir: Path) -> None:
    """Stop and remove the cluster: this run's, or one a crashed run left behind."""
    if (DATA / "postmaster.pid").exists():
        as_postgres(bin_dir / "pg_ctl", "-D", DATA, "-m", "immediate", "-w", "stop")
    shutil.rmtree(DATA, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A fresh cluster on 127.0.0.1:PORT with Debian's rules: no test database, and no way in
    over TCP without a password."""
    bin_dir = postgres_binaries()
    stop(bin_dir)
    DATA.mkdir(mode=0o700)
    shutil.chown(DATA, "postgres", "postgres")
    try:
        made = as_postgres(
            bin_dir / "initdb", "-D", DATA, "-U", "postgres", "-E", "UTF8", "--locale=C",
            "--auth-local=peer", "--auth-host=scram-sha-256", "--no-sync",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        settings = {
            "port": PORT,
            "listen_addresses": "127.0.0.1",  # loopback only
            "unix_socket_directories": SOCKETS,
            "fsync": "off",
        }
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        started = as_postgres(
            bin_dir / "pg_ctl", "-D", DATA, "-l", DATA / "server.log", "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        assert started.returncode == 0, started.stdout + started.stderr
        yield
    finally:
        stop(bin_dir)


def ensure_postgres(url: str) -> subprocess.CompletedProcess[str]:
    """``scripts/ensure-services postgres`` for the tests' PostgreSQL at ``url``."""
    return subprocess.run(
        [SCRIPT, "postgres"],
        env={**os.environ, "JOBSERVICE_TEST_POSTGRES": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def admin(sql: str) -> list[list[str]]:
    """``sql`` as the cluster's administrator: the postgres user, over the socket."""
    done = as_postgres(
        "psql", "-X", "-At", "-h", SOCKETS, "-p", str(PORT), "-d", "postgres", "-c", sql
    )
    assert done.returncode == 0, done.stderr
    return [line.split("|") for line in done.stdout.splitlines()]


def hba_file() -> str:
    ((path,),) = admin("SHOW hba_file")
    return Path(path).read_text()


def test_a_fresh_postgresql_is_set_up_for_the_tests_once_and_then_left_alone(
    cluster: None,
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{PORT}/test"
    # Given a cluster where the tests' connection fails
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()

    first = ensure_postgres(url)
    assert first.returncode == 0, first.stderr
    assert "creating the PostgreSQL database test" in first.stderr
    assert "trusting the PostgreSQL login postgres from this machine only" in first.stderr
    rules = hba_file()

    again = ensure_postgres(url)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""  # nothing left to do
    assert hba_file() == rules

    # The tests connect: to the test database, to databases of their own, without a password
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        assert connection.execute("SELECT current_user, current_database()").fetchall() == [
            ("postgres", "test")
        ]
        connection.execute("CREATE SCHEMA jobs_check")
        connection.execute("CREATE DATABASE jobs_own")
        with psycopg.connect(url.replace("/test", "/jobs_own"), connect_timeout=5):
            pass
        connection.execute("DROP DATABASE jobs_own WITH (FORCE)")
    # and no one is trusted from anywhere but this machine
    trusted = admin("SELECT type, address FROM pg_hba_file_rules WHERE auth_method = 'trust'")
    assert trusted
    assert {address for _, address in trusted} <= LOOPBACK


def test_a_login_of_the_tests_own_is_made_and_owns_their_database(cluster: None) -> None:
    url = f"postgresql://jobservice_tests@127.0.0.1:{PORT}/jobservice_tests"

    done = ensure_postgres(url)
    assert done.returncode == 0, done.stderr
    assert "creating the PostgreSQL login jobservice_tests" in done.stderr

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        assert connection.execute("SELECT current_user, current_database()").fetchall() == [
            ("jobservice_tests", "jobservice_tests")
        ]
        connection.execute("CREATE SCHEMA jobs_check")
        connection.execute("CREATE DATABASE jobs_own_login")
        connection.execute("DROP DATABASE jobs_own_login WITH (FORCE)")
    assert ensure_postgres(url).stderr == ""


def test_a_postgresql_that_cannot_be_set_up_ends_the_script_with_an_error_saying_why() -> None:
    # Given a port no cluster is set to, on a machine with PostgreSQL installed
    postgres_binaries()
    done = ensure_postgres(f"postgresql://postgres@127.0.0.1:{PORT + 1}/test")

    assert done.returncode == 1
    assert f"no PostgreSQL cluster is set to port {PORT + 1}" in done.stderr


def test_a_url_the_script_cannot_set_up_is_an_error_not_a_guess() -> None:
    done = ensure_postgres("postgresql://postgres:secret@db.example:5432/test")

    assert done.returncode == 1
    assert "can set up only postgresql://login@127.0.0.1:port/database" in done.stderr
