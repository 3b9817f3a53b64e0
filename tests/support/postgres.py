"""A throw-away PostgreSQL cluster for the whole test session (one per xdist worker).

``tests.support.plugin`` registers the ``postgres_url`` fixture.  The cluster is
started from the local ``initdb``/``pg_ctl`` binaries on a free loopback port,
with durability switched off for speed, and removed at the end.  Missing
binaries fail the tests loudly: a silently skipped database test is a test
that never runs.

Why not pytest-postgresql (10.0, tried): it runs ``pg_ctl`` as the current user
and has no option to run the server as another one, so as root (as in CI)
``factories.postgresql_proc`` fails with "pg_ctl: cannot be run as root".  With
``executable=`` a wrapper script that calls ``runuser -u postgres -- pg_ctl``,
initdb then fails with "Permission denied": the data directory is under pytest's
basetemp, which pytest creates mode 0700 (owner only).  Driving its
``PostgreSQLExecutor`` directly, with a data directory we chown and a wrapper
script we generate, does work, but it replaces only the three ``pg_ctl`` calls:
we would still find the binaries, switch user, own the directory, pick the port
and create the database, plus a generated shell script, and a failed initdb
surfaces as a bare ``CalledProcessError`` instead of initdb's own message.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.support.network import free_port

DATABASE = "attnwatch_test"
SUPERUSER = "postgres"
#: The system user that runs the cluster when the tests run as root.
SYSTEM_USER = "postgres"
START_ATTEMPTS = 3


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def find_pg_bindir() -> Path:
    """Return a directory holding both ``initdb`` and ``pg_ctl``, or fail the test."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        candidates.append(Path(initdb).resolve().parent)
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates.extend(Path(d) for d in bindirs)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
        "/usr/lib/postgresql/*/bin; install the postgresql server package to run "
        "the PostgreSQL tests",
        pytrace=False,
    )


class _Cluster:
    """Runs the PostgreSQL tools, as the ``postgres`` user when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.prefix: list[str] = []
        if self.as_root:
            # initdb and postgres refuse to run as root.
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.fail("running as root but runuser(1) is not available", pytrace=False)
            try:
                self.user = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                pytest.fail(
                    f"running as root but there is no {SYSTEM_USER!r} system user to run "
                    "PostgreSQL as",
                    pytrace=False,
                )
            self.prefix = [runuser, "-u", SYSTEM_USER, "--"]
        self.root = Path(tempfile.mkdtemp(prefix="attnwatch-pg-"))
        if self.as_root:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        # cwd: the postgres user may not be able to enter the caller's directory.
        return subprocess.run(
            [*self.prefix, str(self.bindir / tool), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no server log)"

    def init(self) -> None:
        done = self.run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if done.returncode != 0:
            pytest.fail(f"initdb failed:\n{done.stdout}\n{done.stderr}", pytrace=False)

    def start(self, port: int | None = None) -> int:
        """Start the server and return its port: ``port``, or a free one if not given.

        A restart after :meth:`halt` passes the old port, so clients keep their URL.
        """
        fixed = port
        for _ in range(START_ATTEMPTS):
            port = fixed or free_port()
            options = (
                f"-c port={port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            done = self.run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                "-t", "60", "start",
            )  # fmt: skip
            if done.returncode == 0:
                return port
            # Most likely someone took the port between our probe and the bind: retry.
        pytest.fail(
            f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{self.server_log()}",
            pytrace=False,
        )

    def halt(self) -> None:
        """Stop the server and keep its data, so :meth:`start` can bring it back.

        Connections are cut at once, but committed transactions survive: a "fast" stop
        writes the WAL out, where "immediate" would lose the last commits, because the
        cluster runs with ``synchronous_commit=off``.
        """
        done = self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if done.returncode != 0:
            pytest.fail(f"pg_ctl stop failed:\n{done.stdout}\n{done.stderr}", pytrace=False)

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Start a private PostgreSQL cluster and yield the URL of an empty database in it."""
    cluster = _Cluster(find_pg_bindir())
    try:
        cluster.init()
        port = cluster.start()
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", autocommit=True
            ) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
        except psycopg.Error as exc:
            pytest.fail(
                f"could not create database {DATABASE}: {exc}\n{cluster.server_log()}",
                pytrace=False,
            )
        yield f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        cluster.stop()


def drop_everything(url: str) -> None:
    """Drop every table in the database at ``url``, the ones Alembic made included.

    The cluster is shared by the session: each test that uses it starts from, and leaves,
    an empty database.
    """
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        found = sa.MetaData()
        found.reflect(engine)
        found.drop_all(engine)
    finally:
        engine.dispose()
