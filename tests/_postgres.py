"""A throwaway PostgreSQL server for the tests that need one (a study shared by many
workers through a ``postgresql://`` storage URL).

Two fixtures:

``postgres_server`` (session scope)
    Starts one fresh PostgreSQL cluster for the whole test session and returns a
    :class:`PostgresServer` (host, port, user, server version, ``url(dbname)``,
    ``connect(dbname)``). It finds PostgreSQL's programs ``initdb`` and ``pg_ctl`` on PATH,
    else in ``/usr/lib/postgresql/*/bin`` (where Debian installs them; the newest version
    first), runs ``initdb`` (user ``postgres``, trust authentication, UTF8, C locale) into a
    new temporary folder (``autofuse-postgres-*`` under the system's temporary folder),
    and starts the server with ``pg_ctl -w`` on a free TCP port of 127.0.0.1/localhost, its
    unix socket in that folder too, with durability turned off (``fsync``,
    ``synchronous_commit``, ``full_page_writes``) since nothing in it needs to survive.
    ``initdb`` refuses to run as root: as root the folder is given to the ``postgres``
    user (the Debian package creates it) and ``initdb`` and ``pg_ctl`` run as that user.
    At the end of the session, also when tests failed or the start failed half-way, the
    server is stopped (``pg_ctl stop -m immediate``; the postmaster is killed if that
    fails) and the folder removed.

``postgres_url`` (function scope)
    Creates a new, empty database on that server for the one test and returns its
    SQLAlchemy URL, ``postgresql://postgres@127.0.0.1:PORT/NAME`` (SQLAlchemy 2.1 reads it
    through psycopg 3, the driver ``autofuse[postgres]`` installs); afterwards it ends the
    connections left to it and drops it.

Without PostgreSQL's programs (Debian: ``apt-get install postgresql``), without the
``psycopg`` driver (``pip install 'autofuse[postgres]'``), or as root without a
``postgres`` user, the fixtures skip the test and say why; with
``AUTOFUSE_REQUIRE_POSTGRES=1`` (CI) they fail it instead.

Use them from a test module with ``pytest_plugins = ["_postgres"]`` (pyflakes stays
quiet), or import both: ``from _postgres import postgres_server, postgres_url``.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
USER = "postgres"

# Appended to the new cluster's postgresql.conf: a server for tests, fast and forgetful.
SETTINGS = {
    "listen_addresses": "localhost",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "autovacuum": "off",
    "max_connections": "200",
}


@dataclass(frozen=True)
class PostgresServer:
    """A running server: connect over TCP to ``host:port`` as ``user`` (no password)."""

    host: str
    port: int
    user: str
    version: int  # server_version_num, e.g. 150018
    folder: Path  # the temporary folder: data/, the unix socket, server.log

    def url(self, dbname: str = "postgres") -> str:
        """The SQLAlchemy URL of database ``dbname`` (psycopg 3, SQLAlchemy 2.1's default)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres"):
        """A new psycopg connection to ``dbname``, in autocommit mode."""
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user,
                               dbname=dbname, connect_timeout=10, autocommit=True)


def _unavailable(reason: str):
    """Skip, or fail when AUTOFUSE_REQUIRE_POSTGRES=1 (CI)."""
    if os.environ.get("AUTOFUSE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"AUTOFUSE_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _version_key(bin_dir: str) -> tuple:
    """Sort key of /usr/lib/postgresql/VERSION/bin by VERSION, numerically."""
    version = Path(bin_dir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _programs() -> tuple[str, str] | None:
    """(initdb, pg_ctl): on PATH, else in the newest /usr/lib/postgresql/*/bin; or None."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key,
                          reverse=True):
        initdb, pg_ctl = os.path.join(bin_dir, "initdb"), os.path.join(bin_dir, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


def _check_available() -> tuple[str, str]:
    """PostgreSQL's programs, after checking that a server can be started and used."""
    reasons = []
    programs = _programs()
    if programs is None:
        reasons.append("PostgreSQL's programs (initdb, pg_ctl) are neither on PATH nor in "
                       "/usr/lib/postgresql/*/bin: install PostgreSQL "
                       "(Debian: apt-get install postgresql)")
    try:
        importlib.import_module("psycopg")
    except ImportError:
        reasons.append("the PostgreSQL driver psycopg is not installed: "
                       "pip install 'autofuse[postgres]' (or 'psycopg[binary]')")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            reasons.append("initdb refuses to run as root and there is no 'postgres' user "
                           "to run it as: run the tests as another user, or install "
                           "PostgreSQL from Debian's packages (they create the user)")
    if reasons:
        _unavailable("; ".join(reasons))
    return programs


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"


class _Cluster:
    """initdb, start, stop; as the ``postgres`` user when this process is root."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="autofuse-postgres-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.log = self.folder / "server.log"
        self.socket_dir.mkdir()
        self.as_user = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam(USER)
            for path in (self.folder, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=self.folder, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout,
                              **self.as_user)

    def create(self) -> None:
        command = [self.initdb, "-D", str(self.data), "-U", USER, "--auth=trust",
                   "-E", "UTF8", "--locale=C"]
        if "--no-sync" in self._run(self.initdb, "--help").stdout:
            command.append("--no-sync")
        done = self._run(*command)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n"
                               f"{done.stderr}")
        settings = dict(SETTINGS, unix_socket_directories=_quote(str(self.socket_dir)))
        settings["listen_addresses"] = _quote(settings["listen_addresses"])
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# autofuse's test server (tests/_postgres.py)\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self, attempts: int = 3) -> int:
        """Start on a free port (another if that one was taken meanwhile); the port."""
        for _ in range(attempts):
            port = _free_port()
            done = self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log),
                             "-o", f"-p {port}", "-w", "-t", "60", "start")
            if done.returncode == 0:
                return port
            self.stop()  # in case it came up after all
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed ({done.returncode}):\n{done.stdout}\n"
                           f"{done.stderr}\n{self.log}:\n{log}")

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        done = self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w",
                         "stop", timeout=60)
        pid_file = self.data / "postmaster.pid"
        if done.returncode != 0 and pid_file.exists():
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A fresh PostgreSQL server for this test session (see the module's docstring)."""
    initdb, pg_ctl = _check_available()
    cluster = _Cluster(initdb, pg_ctl)
    try:
        cluster.create()
        port = cluster.start()
        server = PostgresServer(HOST, port, USER, 0, cluster.folder)
        with contextlib.closing(server.connect()) as conn:
            version = conn.info.server_version
        yield PostgresServer(HOST, port, USER, version, cluster.folder)
    finally:
        cluster.remove()


@pytest.fixture
def postgres_url(postgres_server):
    """The SQLAlchemy URL of a new, empty database for this test; dropped afterwards."""
    from psycopg import sql

    name = f"test_{uuid.uuid4().hex[:16]}"
    with contextlib.closing(postgres_server.connect()) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield postgres_server.url(name)
    with contextlib.closing(postgres_server.connect()) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        drop = "DROP DATABASE IF EXISTS {}"
        if postgres_server.version >= 130000:
            drop += " WITH (FORCE)"
        cur.execute(sql.SQL(drop).format(sql.Identifier(name)))
