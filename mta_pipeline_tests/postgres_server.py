"""A throwaway PostgreSQL server for tests, from the distribution's binaries (Debian: postgresql).

The server runs from a temporary data folder, listens on 127.0.0.1 only (its unix socket stays in
the temporary folder), trusts local connections and is stopped and removed afterwards. As root
(CI), initdb and pg_ctl run as the `postgres` OS user, since PostgreSQL refuses to run as root.
Use it by importing both fixtures into a test module:
`from mta_pipeline_tests.postgres_server import postgres_server, postgres_url`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
DATABASE = "dagster"
SUPERUSER = "postgres"
READY_TIMEOUT_S = 60
# A test server keeps nothing worth a crash-safe disk write.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout first, then PATH), or None."""
    debian = sorted(
        (Path(d) for d in glob.glob(DEBIAN_BIN_GLOB)),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
    )
    on_path = [Path(p).parent for p in [shutil.which("initdb")] if p]
    for folder in [*reversed(debian), *on_path]:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in `root`: `start()` it, `admin()` statements, then `stop()`."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = 0
        # PostgreSQL refuses to run as root: run it as the `postgres` OS user instead.
        self.as_owner = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(root, user=SUPERUSER)

    def _run(self, tool: str, *args: str, timeout: float = READY_TIMEOUT_S) -> str:
        cmd = [*self.as_owner, str(self.bin_dir / tool), *args]
        env = {**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}
        got = subprocess.run(
            cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout
        )
        if got.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({got.returncode}): {got.stderr.strip()}\n{log}")
        return got.stdout

    def start(self, attempts: int = 3) -> None:
        """initdb, then pg_ctl start on a free port (another if it was taken in the meantime)."""
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", SUPERUSER, "-A", "trust"),
            *("--locale=C", "--encoding=UTF8", "--no-sync"),
        )
        for attempt in range(attempts):
            self.port = free_port()
            options = [
                *("-c", "listen_addresses=127.0.0.1", "-p", str(self.port)),
                *("-k", str(self.root)),
                *(arg for setting in FAST_SETTINGS for arg in ("-c", setting)),
            ]
            try:
                self._run(
                    "pg_ctl",
                    *("-D", str(self.data), "-l", str(self.log), "-w"),
                    *("-t", str(READY_TIMEOUT_S), "-o", " ".join(options), "start"),
                    timeout=READY_TIMEOUT_S + 10,
                )
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str) -> None:
        """Run one statement outside a transaction, once the server accepts TCP connections."""
        import psycopg2

        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                conn = psycopg2.connect(self.url("postgres"), connect_timeout=5)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own for the test session, stopped and removed afterwards."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(
            f"no PostgreSQL server binaries (initdb, pg_ctl) in {DEBIAN_BIN_GLOB} or on PATH: "
            "install them (Debian: apt-get install postgresql; .ci/run does)"
        )
    # Not under pytest's tmp folder: that one is private to its owner, and the server runs as
    # `postgres` when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="mta-pg-"))
    server = PostgresServer(bin_dir, root)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of an empty `dagster` database for the test module, dropped afterwards."""
    postgres_server.admin(f'CREATE DATABASE "{DATABASE}"')
    try:
        yield postgres_server.url(DATABASE)
    finally:
        postgres_server.admin(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
