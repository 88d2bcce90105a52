"""Real PostgreSQL servers for the tests, each in a temporary directory of its own.

Each cluster is made by `initdb` (under a second, unsynced) and started as
`postgres -D DIR -k SOCKDIR -c listen_addresses=127.0.0.1 -p PORT` under the
unprivileged OS user ``postgres`` (PostgreSQL refuses root; made as a system user if
missing), or under the tester's own user when the tests do not run as root.  It
listens on loopback and on a Unix socket in its directory, no further.

Authentication is two ways on purpose: ``trust`` on the Unix socket, for setting up
(roles, databases, the rows of an old schema), and ``scram-sha-256`` on 127.0.0.1, so a
store connecting over TCP must find its password in a libpq password file: the
conninfo never holds one.  Every cluster has one role for twofad, `ROLE`, whose password
only its password file (`Cluster.passfile`) knows, and one database `DBNAME` where each
test gets a fresh schema (`Database`).

A cluster is stopped only through the PID it started: SIGINT (fast shutdown) to stop;
SIGKILL to that PID and the backends it forked for "the database dies"; SIGSTOP and
SIGCONT to them for "the database stops answering".  `standby()` makes
a synchronous streaming standby of a running cluster (pg_basebackup -R), `promote()`
turns a standby into a primary.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
ROLE = "twofad"
DBNAME = "twofa"
SETTINGS = {
    # A test cluster: nothing here needs to survive a power cut, so no fsync at all.
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "60",
    "max_wal_senders": "4",
    "wal_level": "replica",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "timezone": "UTC",
    "deadlock_timeout": "100ms",  # a deadlock test waits this long, not a second
}
HBA = """\
local all         all            trust
local replication all            trust
host  all         all 127.0.0.1/32 scram-sha-256
"""


def bindir() -> Path:
    """The newest installed PostgreSQL's programs (TWOFA_PG_BINDIR to choose another)."""
    chosen = os.environ.get("TWOFA_PG_BINDIR")
    if chosen:
        return Path(chosen)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise RuntimeError("PostgreSQL is not installed (make deps installs postgresql)")
    return found[-1].parent


def owner() -> pwd.struct_passwd:
    """The OS user the server runs as: ``postgres`` for root (made if missing), else oneself."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return pwd.getpwnam("postgres")


def as_owner(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A PostgreSQL program run as the server's owner, in a directory it may enter."""
    user = owner()
    extra: dict[str, Any] = {}
    if os.geteuid() == 0:
        extra = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": "/"}
    return subprocess.run(
        command, check=True, capture_output=True, text=True, cwd="/", env=env, **extra, **kwargs
    )


def owned_tempdir(prefix: str) -> Path:
    """A fresh directory (mode 0700) that belongs to the server's owner."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    user = owner()
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def living_children(parent: int) -> list[int]:
    """The processes `parent` started that are not yet dead (a zombie is dead)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Orphans of this process's children come to this process meanwhile (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    before = ctypes.c_int(0)
    libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(before), 0, 0, 0)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, before.value, 0, 0, 0)


@dataclass(frozen=True)
class Database:
    """A fresh schema of the cluster's one database, which a connection sees as a whole
    empty database of its own (``search_path`` in the conninfo): making one takes a
    millisecond, where CREATE DATABASE copies megabytes.  Owned by the twofad role."""

    cluster: Cluster
    schema: str
    name: str = DBNAME

    def _options(self) -> str:
        return f"-csearch_path={self.schema}"

    @property
    def conninfo(self) -> str:
        """Over 127.0.0.1 with SCRAM: the password comes from the password file alone."""
        return make_conninfo(
            host="127.0.0.1",
            port=self.cluster.port,
            dbname=self.name,
            user=ROLE,
            passfile=str(self.cluster.passfile),
            options=self._options(),
        )

    @property
    def uri(self) -> str:
        """The same as a URI."""
        query = urllib.parse.urlencode(
            {"passfile": str(self.cluster.passfile), "options": self._options()}
        )
        return f"postgresql://{ROLE}@127.0.0.1:{self.cluster.port}/{self.name}?{query}"

    @property
    def socket_conninfo(self) -> str:
        """As the twofad role over the Unix socket (trust): for setting up rows."""
        return make_conninfo(
            host=str(self.cluster.sockdir),
            port=self.cluster.port,
            dbname=self.name,
            user=ROLE,
            options=self._options(),
        )

    def drop(self) -> None:
        """Gone, tables and all."""
        if self.cluster.alive():
            self.cluster.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE", dbname=self.name)

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """One statement as the twofad role, committed; the rows it returned."""
        with psycopg.connect(self.socket_conninfo, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


class Cluster:
    """One PostgreSQL server of the tests: its directory, its port, its one process."""

    def __init__(self, *, initdb: bool = True) -> None:
        """A new cluster (initdb), or with `initdb` false no data directory yet."""
        self.root = owned_tempdir("twofa-pg-")
        self.data = self.root / "data"
        self.sockdir = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._frozen: list[int] = []
        self._databases = 0
        if initdb:
            as_owner(
                [str(bindir() / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-sync", "--auth=trust"],
            )  # fmt: skip
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write("".join(f"{key} = '{value}'\n" for key, value in SETTINGS.items()))
            (self.data / "pg_hba.conf").write_text(HBA)
        as_owner(["mkdir", "-m", "0700", str(self.sockdir)])
        self.passfile = self.root / "pgpass"
        self.password = secrets.token_urlsafe(18)
        self.passfile.touch(mode=0o600)
        # Any port on 127.0.0.1, so a standby's password file is the same line.
        self.passfile.write_text(f"127.0.0.1:*:*:{ROLE}:{self.password}\n")

    # --- the process ----------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Cluster:
        """Start the server (again, after stop or kill) and wait until it accepts."""
        assert not self.alive(), "already running"
        user = owner()
        extra: dict[str, Any] = {}
        if os.geteuid() == 0:
            extra = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        command = [
            str(bindir() / "postgres"), "-D", str(self.data), "-k", str(self.sockdir),
            "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
        ]  # fmt: skip
        setpriv = shutil.which("setpriv")
        if setpriv:  # a test run killed outright stops its servers too (exec: the same PID)
            command = [setpriv, "--pdeathsig", "INT", "--", *command]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                **extra,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self.proc.returncode}: {self.log_tail()}"
                )
            ready = subprocess.run(
                [str(bindir() / "pg_isready"), "-q", "-h", str(self.sockdir), "-p", str(self.port),
                 "-t", "1"],
                check=False,
            )  # fmt: skip
            if ready.returncode == 0:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not accept connections in {timeout} s: {self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): sessions ended, everything committed kept."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout)

    def kill(self) -> None:
        """The database dies: SIGKILL to the server and its backends, no shutdown at all.

        Each backend is a session of its own (PostgreSQL calls setsid), so they are
        signalled one by one, the server stopped first so that it forks no more.  This
        process is their subreaper meanwhile, so it reaps them itself: no zombies left
        to an init that may not reap, and a restart finds their shared memory free.
        """
        if not self.alive():
            return
        assert self.proc is not None
        with subreaper():
            os.kill(self.proc.pid, signal.SIGSTOP)
            backends = living_children(self.proc.pid)
            for pid in [self.proc.pid, *backends]:
                os.kill(pid, signal.SIGKILL)
            self.proc.wait(10)
            deadline = time.monotonic() + 10
            for pid in backends:
                while True:
                    try:
                        if os.waitpid(pid, os.WNOHANG)[0] == pid:
                            break
                    except ChildProcessError:
                        break  # reaped by someone else
                    if time.monotonic() > deadline:
                        raise RuntimeError("the killed server's backends did not exit")
                    time.sleep(0.01)

    def freeze(self) -> None:
        """The database stops answering, connections left open (a paused VM, hung storage)."""
        assert self.alive() and self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self._frozen = [self.proc.pid, *living_children(self.proc.pid)]
        for pid in self._frozen[1:]:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in reversed(self._frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def destroy(self) -> None:
        if self.alive():
            self.thaw()
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- as the superuser, over the Unix socket ------------------------------------

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=str(self.sockdir), port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def execute(self, sql: str, params: Any = None, dbname: str = "postgres") -> list[Any]:
        with self.admin(dbname) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def new_database(self) -> Database:
        """A fresh, empty place for twofad's tables (the role and database made on first use)."""
        if not self._databases:
            with self.admin() as conn:
                conn.execute(
                    psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        psycopg.sql.Identifier(ROLE), psycopg.sql.Literal(self.password)
                    )
                )
                conn.execute(f"CREATE DATABASE {DBNAME} OWNER {ROLE}")
                # Nothing of twofad's in public: each test's tables are in its own schema.
                conn.execute(f"REVOKE CREATE ON DATABASE {DBNAME} FROM PUBLIC")
        self._databases += 1
        database = Database(self, f"t{self._databases}")
        self.execute(f"CREATE SCHEMA {database.schema} AUTHORIZATION {ROLE}", dbname=DBNAME)
        return database

    # --- replication ------------------------------------------------------------------

    def standby(self) -> Cluster:
        """A synchronous streaming standby of this running cluster: every commit here
        waits until the standby has applied it, so a primary killed loses nothing
        committed, and what was committed here can be read there at once."""
        replica = Cluster(initdb=False)
        as_owner(
            [str(bindir() / "pg_basebackup"), "-h", str(self.sockdir), "-p", str(self.port),
             "-U", "postgres", "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast",
             "--no-sync"],
        )  # fmt: skip
        replica.passfile.write_text(self.passfile.read_text())
        replica.password = self.password
        replica.start()
        self.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        # A commit returns once the standby has applied it: readable there at once.
        self.execute("ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
        self.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.execute("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'"):
                return replica
            time.sleep(0.05)
        raise RuntimeError(f"the standby did not become synchronous: {replica.log_tail()}")

    def in_recovery(self) -> bool:
        return bool(self.execute("SELECT pg_is_in_recovery()")[0][0])

    def promote(self) -> None:
        """This standby becomes a primary, and accepts writes when this returns."""
        self.execute("SELECT pg_promote(true, 30)")
        deadline = time.monotonic() + 30
        while self.in_recovery():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby was not promoted: {self.log_tail()}")
            time.sleep(0.05)


def both_hosts_uri(database: Database, standby: Cluster) -> str:
    """The primary first, then the standby: libpq tries them in turn for a writable one."""
    query = urllib.parse.urlencode(
        {
            "target_session_attrs": "read-write",
            "passfile": str(database.cluster.passfile),
            "options": f"-csearch_path={database.schema}",
        }
    )
    hosts = f"127.0.0.1:{database.cluster.port},127.0.0.1:{standby.port}"
    return f"postgresql://{ROLE}@{hosts}/{database.name}?{query}"
