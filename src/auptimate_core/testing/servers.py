"""Throwaway Redis, PostgreSQL and MariaDB servers on free loopback ports, for tests and benchmarks.

Each server runs from a temporary directory and is stopped (and the directory removed) by
``stop()`` or on leaving the ``with`` block. Nothing here talks to anything but 127.0.0.1.

PostgreSQL's ``initdb`` refuses to run as root; as root the server runs as the ``postgres`` system
user through ``runuser``; MariaDB's server likewise runs as the ``mysql`` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A test server could not be started; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def free_cluster_port() -> int:
    """A free port whose Redis Cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10_000 > 65_535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port + 10_000))
            except OSError:
                continue
        return port
    raise ServerError("no free pair of ports for a Redis Cluster node")


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited with status {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.02)
    raise ServerError(f"{what} did not listen on port {port} within {timeout} s")


class _Server:
    """A server started by ``start()`` and stopped by ``stop()``, or by a ``with`` block."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop ``proc`` (SIGTERM, then SIGKILL after ``timeout`` seconds) and reap it."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RedisServer(_Server):
    """A ``redis-server`` process on a free loopback port.

    ``persistent=True`` turns on the append-only file with ``fsync always``, so that ``kill()``
    followed by ``start()`` (same port, same directory) shows what survives a crash.
    """

    def __init__(
        self,
        *,
        persistent: bool = False,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        directory: Path | None = None,
    ) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServerError("redis-server is not installed (apt-get install redis-server)")
        self.executable = exe
        self.port = port or free_port()
        self.persistent = persistent
        self.extra_args = extra_args
        self._own_dir = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="auptimate-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> Self:
        args = [
            self.executable, "--port", str(self.port), "--bind", LOOPBACK,
            "--dir", str(self.directory), "--save", "", "--protected-mode", "no",
            "--loglevel", "warning", "--logfile", str(self.directory / "redis.log"),
        ]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        args += list(self.extra_args)
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for_port(self.port, self._proc, timeout, "redis-server")
        return self

    def kill(self) -> None:
        """Stop the server at once (SIGKILL), keeping its directory for a restart."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def stop(self) -> None:
        """Stop the server and remove its directory (if this object made it)."""
        if self._proc is not None:
            _terminate(self._proc, 10)
            self._proc = None
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)


def _pg_bindir() -> Path:
    override = os.environ.get("AUPTIMATE_PG_BINDIR")
    if override:
        return Path(override)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ServerError("PostgreSQL is not installed (apt-get install postgresql)")


class PostgresServer(_Server):
    """A PostgreSQL cluster made by ``initdb`` in a temporary directory, on a free port.

    Authentication is ``trust`` on loopback only; the superuser is ``postgres`` and the
    database ``auptimate`` exists once :meth:`start` returns.
    """

    def __init__(self, *, port: int | None = None) -> None:
        self.bindir = _pg_bindir()
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="auptimate-pg-"))
        self.datadir = self.directory / "data"
        self.database = "auptimate"
        self._as_root = os.geteuid() == 0
        self._started = False

    def url(self, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@{LOOPBACK}:{self.port}/{self.database}"

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise ServerError(
                f"{Path(args[0]).name} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace').strip()[-2000:]}"
            )

    def start(self) -> Self:
        if self._as_root:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
            "-A", "trust", "-E", "UTF8", "--no-sync",
        )
        options = (
            f"-p {self.port} -c listen_addresses={LOOPBACK} -k {self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options,
            "-l", str(self.directory / "postgres.log"), "-w", "-t", "60", "start",
        )
        self._started = True
        self._run(
            str(self.bindir / "createdb"), "-h", LOOPBACK, "-p", str(self.port),
            "-U", "postgres", self.database,
        )
        return self

    def stop(self) -> None:
        if self._started:
            with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                    "-w", "stop", timeout=60,
                )
            self._started = False
        shutil.rmtree(self.directory, ignore_errors=True)


class MariaDBServer(_Server):
    """A MariaDB (or MySQL-compatible) server made by ``mariadb-install-db`` in a temporary
    directory, on a free loopback port.

    ``root`` logs in without a password from loopback only; the database ``auptimate`` exists
    once :meth:`start` returns, in ``utf8mb4`` with a binary collation, so ids compare by code
    point as on the other backends. Durability settings are relaxed, as for PostgreSQL above.
    """

    def __init__(self, *, port: int | None = None) -> None:
        installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        server = (shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
                  or shutil.which("mysqld", path="/usr/sbin"))
        if installer is None or server is None:
            raise ServerError("MariaDB is not installed (apt-get install mariadb-server)")
        self.installer, self.server = installer, server
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="auptimate-mariadb-"))
        self.datadir = self.directory / "data"
        self.database = "auptimate"
        self._user = "mysql" if os.geteuid() == 0 else None
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, driver: str = "pymysql") -> str:
        return (f"mysql+{driver}://root@{LOOPBACK}:{self.port}/{self.database}"
                "?charset=utf8mb4")

    def _common(self) -> list[str]:
        user = [f"--user={self._user}"] if self._user else []
        return ["--no-defaults", f"--datadir={self.datadir}", *user]

    def start(self, timeout: float = 60.0) -> Self:
        if self._user:
            shutil.chown(self.directory, self._user, self._user)
        done = subprocess.run(
            [self.installer, *self._common(), "--auth-root-authentication-method=normal",
             "--skip-test-db", "--skip-name-resolve"],
            capture_output=True, timeout=120, check=False,
        )
        if done.returncode != 0:
            raise ServerError(f"mariadb-install-db failed ({done.returncode}): "
                              f"{done.stderr.decode(errors='replace').strip()[-2000:]}")
        self._proc = subprocess.Popen(
            [self.server, *self._common(), f"--port={self.port}", f"--bind-address={LOOPBACK}",
             f"--socket={self.directory / 'mysqld.sock'}",
             f"--pid-file={self.directory / 'mysqld.pid'}",
             f"--log-error={self.directory / 'error.log'}", "--skip-name-resolve",
             "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=128M",
             "--max-connections=200", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_bin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(self.port, self._proc, timeout, "mariadbd")
            self._create_database(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _create_database(self, timeout: float) -> None:
        client = shutil.which("mariadb") or shutil.which("mysql")
        if client is None:
            raise ServerError(
                "the mariadb client is not installed (apt-get install mariadb-client)")
        deadline = time.monotonic() + timeout
        while True:
            done = subprocess.run(
                [client, "--no-defaults", "-h", LOOPBACK, "-P", str(self.port), "-u", "root",
                 "-e", f"CREATE DATABASE IF NOT EXISTS {self.database} "
                       "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"],
                capture_output=True, timeout=30, check=False,
            )
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ServerError(f"cannot create the database: {done.stderr.decode().strip()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc, 30)
            self._proc = None
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisClusterServers(_Server):
    """A Redis Cluster of ``nodes`` masters (no replicas) on free loopback ports.

    Each node is a ``redis-server --cluster-enabled yes`` in its own directory; ``start()``
    joins them with ``redis-cli --cluster create`` and waits until the cluster says ok.
    """

    def __init__(self, nodes: int = 3) -> None:
        self.nodes = [
            RedisServer(
                port=free_cluster_port(),
                extra_args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-node-timeout", "5000"),
            )
            for _ in range(nodes)
        ]

    @property
    def url(self) -> str:
        return f"redis+cluster://{LOOPBACK}:{self.nodes[0].port}"

    def start(self, timeout: float = 30.0) -> Self:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise ServerError("redis-cli is not installed (apt-get install redis-tools)")
        for node in self.nodes:
            node.start()
        addresses = [f"{LOOPBACK}:{node.port}" for node in self.nodes]
        done = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0",
             "--cluster-yes"],
            capture_output=True, timeout=timeout, check=False,
        )
        if done.returncode != 0:
            self.stop()
            raise ServerError(f"redis-cli --cluster create failed: {done.stdout!r}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Every node must agree, not just the first: each learns the others by gossip.
            if all("cluster_state:ok" in self._info(cli, node.port) for node in self.nodes):
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerError("the Redis Cluster did not reach cluster_state:ok")

    @staticmethod
    def _info(cli: str, port: int) -> str:
        return subprocess.run(
            [cli, "-p", str(port), "cluster", "info"],
            capture_output=True, timeout=10, check=False,
        ).stdout.decode()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
