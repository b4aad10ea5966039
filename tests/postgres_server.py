"""A real PostgreSQL server for the tests, started once per session with initdb and pg_ctl.

PostgreSQL refuses to run as root: as root, the server's folder belongs to the `postgres` user
(or `nobody`) and its programs run as that user through `runuser`. The server listens on a free
loopback port, with its socket in its own folder, and asks for a password over TCP, so the
tests log in the way a team's client does. Without the binaries the tests are skipped, and
they fail instead where LLMSELECT_REQUIRE_POSTGRES=1 (CI installs Debian's `postgresql`).
tests/conftest.py loads it as a plugin: ask for `postgres_server` or `pg_url`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "llmselect"
PASSWORD = "s3cret-pg-pw"
_databases = itertools.count()


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    log: Path

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL (with the password)."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # our own name
        return self.url(name)


def _binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (pg_ctl starts the postgres beside it)."""
    found = shutil.which("initdb")
    candidates = [str(Path(found).resolve().parent)] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if all((Path(folder) / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    """The user the server runs as: None (this one) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and there is no `postgres` or `nobody` user to run as")


def _command(user: str | None, *args: str) -> list[str]:
    return ["runuser", "-u", user, "--", *args] if user else list(args)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    binaries = _binaries()
    if binaries is None:
        reason = "PostgreSQL is not installed (no initdb/pg_ctl; apt-get install postgresql)"
        if os.environ.get("LLMSELECT_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + ", and LLMSELECT_REQUIRE_POSTGRES=1 asks for it")
        pytest.skip(reason)
    user = _run_as()
    # In /tmp, not $TMPDIR: the server's user must reach it, and a socket path must be short.
    root = Path(tempfile.mkdtemp(prefix="llmselect-pg-", dir="/tmp"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if user:
        owner = pwd.getpwnam(user)
        for path in (root, sockets, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        _command(
            user,
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ),
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = subprocess.run(
        _command(
            user,
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "start",
        ),
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )
    if started.returncode != 0:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{text}")
    try:
        yield PostgresServer("127.0.0.1", port, SUPERUSER, PASSWORD, log)
    finally:
        subprocess.run(
            _command(user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            capture_output=True,
            env=env,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A URL (with its password) to a new, empty database on the session's server."""
    return postgres_server.create_database()
