"""A throwaway PostgreSQL 15 cluster on a free port of 127.0.0.1, removed again on stop."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from tests.servers import LOOPBACK, SETPRIV, free_port

# Debian's PostgreSQL 15 binaries, installed on the image but not running.
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")

# The operating-system account that owns the cluster; initdb refuses to run as root.
POSTGRES_ACCOUNT = "postgres"


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, trust auth, fsync off, for tests only.

    A durable cluster (for benchmarks) keeps PostgreSQL's own settings: fsync, synchronous
    commits and full-page writes on.
    """

    def __init__(self, bin_dir: Path = POSTGRES_BIN, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable
        self.host = LOOPBACK
        self.port = 0
        self.base_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _as_owner(self) -> list[str]:
        """Return the command prefix that runs a program as the cluster's owner."""
        if os.geteuid() == 0:
            return ["runuser", "-u", POSTGRES_ACCOUNT, "--"]
        return []

    def start(self) -> None:
        """Create the cluster with initdb and start postgres in the foreground of a child."""
        if not (self.bin_dir / "initdb").exists():
            raise RuntimeError(f"PostgreSQL binaries not found in {self.bin_dir}")
        self.base_dir = Path(tempfile.mkdtemp(prefix="rrbot-pg-"))
        data_dir = self.base_dir / "data"
        socket_dir = self.base_dir / "sock"
        socket_dir.mkdir()
        # The cluster's owner must be able to enter the temporary folder and write in it.
        os.chmod(self.base_dir, 0o755)
        if os.geteuid() == 0:
            account = pwd.getpwnam(POSTGRES_ACCOUNT)
            for path in (self.base_dir, socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        subprocess.run(
            [
                *self._as_owner(),
                str(self.bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # A port found free can be taken by someone else before postgres binds it, so retry.
        for _attempt in range(3):
            self.port = free_port()
            if self._start_postmaster(data_dir, socket_dir):
                return
        raise RuntimeError(f"PostgreSQL did not start; see {self.base_dir / 'postgres.log'}")

    def _start_postmaster(self, data_dir: Path, socket_dir: Path) -> bool:
        """Start postgres on self.port and wait until it accepts connections."""
        assert self.base_dir is not None
        log = open(self.base_dir / "postgres.log", "ab")  # noqa: SIM115
        command: list[str] = []
        if SETPRIV.exists():
            # Fast shutdown (SIGINT) if the test process dies without stopping the cluster.
            command = [str(SETPRIV), "--pdeathsig", "INT"]
            if os.geteuid() == 0:
                command += [
                    "--reuid",
                    POSTGRES_ACCOUNT,
                    "--regid",
                    POSTGRES_ACCOUNT,
                    "--init-groups",
                ]
            command.append("--")
        else:
            command = self._as_owner()
        command += [
            str(self.bin_dir / "postgres"),
            "-D",
            str(data_dir),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-p",
            str(self.port),
            "-k",
            str(socket_dir),
        ]
        if not self.durable:
            command += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off"]
        self._process = subprocess.Popen(command, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                with psycopg.connect(self._conninfo("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)  # real-time ok: waiting for a real process, bounded
        self.stop()
        return False

    def _conninfo(self, dbname: str) -> str:
        """Return a libpq connection string for dbname on this cluster."""
        return f"host={self.host} port={self.port} user=postgres dbname={dbname}"

    def url(self, dbname: str) -> str:
        """Return the SQLAlchemy URL of dbname on this cluster."""
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting anyone still using it."""
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        """Stop the cluster (fast shutdown) and remove its folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
