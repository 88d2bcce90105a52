"""The PostgreSQL backend: one store a fleet's daemons share, and its schema's migrations.

Why it is built the way it is:

- **READ COMMITTED, and every named write one conditional statement.**  A write is
  ``UPDATE users SET ..., version = version + 1 WHERE name = %s AND version = %s``; a
  recovery code is spent by ``UPDATE ... WHERE id = %s AND used_at IS NULL``; a new
  account is ``INSERT ... ON CONFLICT (name) DO NOTHING``.  No row changed means
  `Conflict`, and the service starts over from a fresh read.  Under READ COMMITTED an
  UPDATE that waited on another transaction's row lock re-checks its WHERE against the
  row that transaction committed, so of two hosts racing from the same read for a time
  step, a recovery code or a failure count exactly one matches: no SERIALIZABLE retry
  storms, and no lock held across a login's round trips.  ON CONFLICT DO NOTHING keeps
  the transaction usable after a lost insert, as SQLite's is.  A deadlock (a code spent
  while another host renews that user's codes takes the two tables in the other order)
  is a Conflict too: the server aborted one side, which starts over.
- **Behind pgbouncer in transaction mode.**  No server-side prepared statements
  (``prepare_threshold=None``) and nothing set on the session: the time bounds are
  ``SET LOCAL`` in each transaction, the migrations' advisory lock is transaction-scoped,
  and there is no LISTEN, temporary table or session variable for a pooled server
  connection to carry from one client to the next.
- **Bounded time, never a hang.**  ``connect_timeout`` bounds a connection; the server's
  ``statement_timeout`` and ``lock_timeout`` bound each statement and lock wait;
  TCP keepalives and ``tcp_user_timeout`` notice a network that drops packets.  None of
  those fire when the server stops answering altogether (a paused VM, hung storage),
  so a watchdog thread also cuts the socket of a transaction past its bound.  The PAM
  hook waits 5 s for the daemon, and these bounds leave the daemon time to answer
  `unavailable` first.  A stuck daemon cannot hold a user's row lock for long either:
  ``idle_in_transaction_session_timeout`` ends its session.
- **Only the store's own exceptions leave it.**  A database unreachable, gone, read-only
  or over a bound is `StoreUnavailable`; a lost race is `Conflict`; anything else the
  server refuses is `StoreError`.  A broken connection is dropped, and the next
  ``transaction()`` connects again by itself (also once more at once if the connection
  it had died while idle), so the database coming back needs no restart.
- **Migrations at connect, exactly once.**  They run in one transaction under
  ``pg_advisory_xact_lock``, after reading the schema version again under that lock, so
  ten daemons starting at once apply each exactly once, and the others wait for it.  A
  schema newer than this program is refused, as SQLite's is.  The PostgreSQL schema has
  its own version numbers (``schema_version``, one row per migration applied).
- **No password in the connection string.**  A conninfo (a ``postgresql://`` URI or
  ``key=value`` pairs such as ``service=twofad``) travels in command lines, unit files
  and logs, so one carrying a password is refused: it belongs in a libpq password file
  (``PGPASSFILE``, ``passfile=``, ``~/.pgpass``), a service file, or is replaced by
  certificates.  No message ever holds the conninfo.

`PostgresPool` hands out up to N such stores to a daemon's threads: made when first
needed, kept for the next caller, a broken one dropped; waiting for a free one is
bounded too (StoreUnavailable past `wait`), never a login left hanging behind others.

psycopg 3 is imported here only, and only when a PostgreSQL store is made, so the
SQLite default needs nothing more than the standard library.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .interface import Conflict, RecoveryRow, StoreError, StoreUnavailable, UserRow
from .writes import SELECT_USER, NamedWrites

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 2

# Migration N takes the schema from version N-1 to N.  Never edit one that shipped.
# The columns mean what SQLite's do (sqlite.MIGRATIONS); "user" is quoted, a reserved word.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE schema_version (
        version    integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE users (
        name               text PRIMARY KEY,
        version            bigint NOT NULL DEFAULT 0,
        created_at         double precision NOT NULL,
        secret             bytea,
        algorithm          text,
        digits             integer,
        period             integer,
        enrolled_at        double precision,
        pending_secret     bytea,
        pending_algorithm  text,
        pending_digits     integer,
        pending_period     integer,
        pending_since      double precision,
        last_step          bigint,
        drift              integer NOT NULL DEFAULT 0,
        failures           integer NOT NULL DEFAULT 0,
        locked_until       double precision,
        hard_locked        integer NOT NULL DEFAULT 0,
        last_success       double precision,
        last_failure       double precision,
        totp_window        integer,
        strikes            integer NOT NULL DEFAULT 0,
        recent_failures    text
    );
    CREATE TABLE recovery_codes (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        "user"     text NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        digest     bytea NOT NULL,
        created_at double precision NOT NULL,
        used_at    double precision,
        UNIQUE ("user", digest)
    );
    CREATE TABLE meta (
        key   text PRIMARY KEY,
        value bytea NOT NULL
    );
    """,
    # Which host a code was last accepted on (SQLite's migration 5).
    2: """
    ALTER TABLE users ADD COLUMN last_host text;
    """,
}

# The advisory lock the migrations take: "twofad" and 1, one key for every twofad.
MIGRATION_LOCK = 0x7477_6F66_6164_0001

# What a conninfo does not say itself: bounded connects and a dead peer noticed.  The
# store always writes, so among several hosts only a primary will do.
CONNECT_DEFAULTS = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "2",
    "target_session_attrs": "read-write",
    "application_name": "twofad",
}


def _psycopg() -> ModuleType:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "a PostgreSQL store needs psycopg 3: apt install python3-psycopg, "
            "or pip install 'pam-twofa[postgresql]'"
        ) from None
    return psycopg


def checked_conninfo(conninfo: str) -> dict[str, str]:
    """The conninfo's parameters; a StoreError if it is not one, or carries a password.

    The message never repeats the conninfo, nor the parser's words about it (they can
    quote a piece of it), and the parser's exception is not chained.
    """
    psycopg = _psycopg()
    try:
        params: dict[str, Any] = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        raise StoreError(
            "the PostgreSQL store is neither a postgresql:// URI nor key=value "
            "connection parameters"
        ) from None
    if params.get("password"):
        raise StoreError(
            "the PostgreSQL connection string carries a password: it would show in "
            "command lines, unit files and logs; put it in a libpq password file "
            "(PGPASSFILE or passfile=, mode 0600) or a service file instead"
        )
    timeout = str(params.get("connect_timeout", "0")).strip()
    if not timeout.lstrip("-").isdigit():
        raise StoreError("connect_timeout in the PostgreSQL connection string is whole seconds")
    return {key: str(value) for key, value in params.items()}


def _first_line(exc: BaseException) -> str:
    """libpq's own words (host, port, user, what failed), never a password: none is given."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# What the server (or libpq) says when it will go on refusing this daemon, however long
# one waits: a wrong password or role, a database that does not exist, a host not in
# pg_hba.conf, a parameter a pooler refuses, a TLS certificate that does not verify.
# Answered `unavailable`, these would let everyone in under the hook's fail=open (and a
# certificate failure is what a man in the middle causes), so they are `internal`: the
# hook refuses, whatever fail= says.  Being down, starting, shutting down, in recovery
# or out of connection slots are outages, and stay `unavailable`.
_REFUSED_FOR_GOOD = (
    "password authentication failed",
    "no password supplied",
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "unsupported startup parameter",
    "certificate",
    "ssl",
    "server does not support",
)


def refused_for_good(exc: BaseException) -> bool:
    """Whether a failed connection is a refusal that waiting will not end."""
    text = str(exc).lower()
    return any(phrase in text for phrase in _REFUSED_FOR_GOOD)


def translated(exc: Exception) -> Exception:
    """A psycopg error as the store's own: unavailable, a lost race, or refused.

    By SQLSTATE, not by class: psycopg's class tree differs between versions (3.1's
    DeadlockDetected is no TransactionRollback).
    """
    psycopg = _psycopg()
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith("40"):  # serialization failure, deadlock: the server undid it
        return Conflict(f"lost to a concurrent transaction ({sqlstate})")
    if sqlstate == "57014":
        return StoreUnavailable("the database did not answer within the statement timeout")
    if sqlstate == "55P03":
        return StoreUnavailable("a row stayed locked by another connection past the lock timeout")
    if sqlstate == "25006":
        return StoreUnavailable("the database is read-only now (a standby, or failing over)")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(f"the database cannot answer now: {_first_line(exc)}")
    return StoreError(
        f"the database refused a statement ({sqlstate or 'no SQLSTATE'} {type(exc).__name__})"
    )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _overdue(seconds: float) -> StoreUnavailable:
    return StoreUnavailable(f"the database did not answer within {seconds:g} s")


class _Guard:
    """One armed deadline: a duplicate of the connection's socket, to shut down."""

    __slots__ = ("deadline", "fired", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.fired = False


class _Watchdog:
    """One thread for every store: cuts the socket of a transaction past its bound.

    The socket is shut down, not closed, through a descriptor of its own (libpq may
    close its descriptor meanwhile, and the number be reused): the connection's next
    read returns at once, psycopg raises, and the store drops the connection.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: set[_Guard] = set()
        self._wake_at: float | None = None
        self._thread: threading.Thread | None = None

    def arm(self, fd: int, seconds: float) -> _Guard:
        guard = _Guard(socket.socket(fileno=os.dup(fd)), time.monotonic() + seconds)
        with self._cond:
            self._armed.add(guard)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="twofad-store-watchdog", daemon=True
                )
                self._thread.start()
            if self._wake_at is None or guard.deadline < self._wake_at:
                self._cond.notify()
        return guard

    def disarm(self, guard: _Guard) -> None:
        with self._cond:
            self._armed.discard(guard)
        guard.sock.close()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for guard in [g for g in self._armed if g.deadline <= now]:
                    self._armed.discard(guard)
                    guard.fired = True
                    with suppress(OSError):  # already gone
                        guard.sock.shutdown(socket.SHUT_RDWR)
                self._wake_at = min((g.deadline for g in self._armed), default=None)
                self._cond.wait(None if self._wake_at is None else self._wake_at - now)


_WATCHDOG = _Watchdog()


class PostgresStore(NamedWrites):
    """One connection to a PostgreSQL database; use every method inside ``transaction()``.

    `conninfo` is a libpq URI or key=value string without a password.  The connection
    is made (and the schema migrated) at once, unless `connect_now` is false: then at
    the first transaction.  Either raises StoreUnavailable if the database cannot be
    reached; a later transaction tries again.  One thread at a time, like SqliteStore.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        connect_timeout: float = 2.0,
        statement_timeout: float = 1.5,
        lock_timeout: float = 1.5,
        transaction_timeout: float = 2.5,
        migration_timeout: float = 60.0,
        connect_now: bool = True,
    ) -> None:
        self._psycopg = _psycopg()
        given = checked_conninfo(conninfo)
        defaults = {
            **CONNECT_DEFAULTS,
            # libpq counts whole seconds, and takes fewer than 2 as 2
            "connect_timeout": str(max(2, round(connect_timeout))),
            "tcp_user_timeout": str(_ms(transaction_timeout)),
        }
        missing = {key: value for key, value in defaults.items() if key not in given}
        self._conninfo = self._psycopg.conninfo.make_conninfo(conninfo, **missing)
        self._transaction_timeout = transaction_timeout
        self._migration_timeout = migration_timeout
        self._begin = self._setup(statement_timeout, lock_timeout, transaction_timeout)
        self._conn: psycopg.Connection[Any] | None = None
        if connect_now:
            self._connection()

    def __repr__(self) -> str:
        return f"<PostgresStore {'connected' if self.connected else 'not connected'}>"

    @staticmethod
    def _setup(statement: float, lock: float, idle: float) -> str:
        """One round trip opening a transaction with its bounds (SET LOCAL: pgbouncer-safe).

        A session left idle in the transaction past `idle` is ended by the server, so a
        stuck daemon does not keep a user's row locked against the other hosts.
        """
        return (
            "BEGIN ISOLATION LEVEL READ COMMITTED; "
            f"SET LOCAL statement_timeout = {_ms(statement)}; "
            f"SET LOCAL lock_timeout = {_ms(lock)}; "
            f"SET LOCAL idle_in_transaction_session_timeout = {_ms(idle)}"
        )

    @property
    def connected(self) -> bool:
        """A connection is open and not known to be broken."""
        return self._conn is not None and not self._conn.closed

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):  # closing a broken connection: nothing to save
                conn.close()

    # --- connecting, migrating, transactions -----------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection, or a new one with the schema brought up to date."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._drop()
        try:
            conn: psycopg.Connection[Any] = self._psycopg.connect(
                self._conninfo, autocommit=True, prepare_threshold=None
            )
        except self._psycopg.Error as exc:
            if refused_for_good(exc):
                raise StoreError(
                    f"the database refuses twofad: {_first_line(exc)} (a configuration "
                    "error, not an outage: every login is refused until it is fixed)"
                ) from None
            raise StoreUnavailable(f"cannot connect to the database: {_first_line(exc)}") from None
        self._conn = conn
        try:
            self._migrate(conn)
        except BaseException:
            self._drop()
            raise
        return conn

    @contextmanager
    def _bounded(self, conn: psycopg.Connection[Any], seconds: float) -> Iterator[_Guard]:
        """The watchdog armed over a block; past `seconds` its message says so."""
        guard = _WATCHDOG.arm(conn.fileno(), seconds)
        try:
            yield guard
        except StoreUnavailable:
            self._drop()
            if guard.fired:
                raise _overdue(seconds) from None
            raise
        finally:
            _WATCHDOG.disarm(guard)
            if guard.fired:
                self._drop()

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        timeout = self._migration_timeout
        setup = self._setup(timeout, timeout, timeout)
        with self._bounded(conn, timeout + 5.0):
            self._run(conn, setup)
            try:
                current = self._schema_version(conn)
                if current < SCHEMA_VERSION:
                    self._run(conn, f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                    current = self._schema_version(conn)  # another daemon may have done it
                self._refuse_newer(conn, current)
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    try:
                        conn.execute(MIGRATIONS[version])
                    except self._psycopg.errors.DuplicateTable:  # 42P07
                        raise StoreError(
                            f"database {conn.info.dbname} already holds tables of another "
                            "program (no twofad schema_version); give twofad a database "
                            "or a schema of its own"
                        ) from None
                    except self._psycopg.Error as exc:
                        raise translated(exc) from exc
                    self._run(conn, "INSERT INTO schema_version (version) VALUES (%s)", (version,))
            except BaseException:
                self._rollback(conn)
                raise
            self._run(conn, "COMMIT")

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int:
        # The catalog itself, read with this statement's snapshot: to_regclass would go
        # by this session's cache, which may not yet know of a table another daemon
        # made while this one waited for the lock.
        exists = self._run(
            conn,
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_tables "
            "WHERE schemaname = current_schema() AND tablename = 'schema_version')",
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = self._run(conn, "SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _refuse_newer(conn: psycopg.Connection[Any], current: int) -> None:
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database {conn.info.dbname} has schema version {current}, newer than "
                f"this twofad understands ({SCHEMA_VERSION}); upgrade twofad"
            )

    def _run(
        self, conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] | None = None
    ) -> psycopg.Cursor[Any]:
        try:
            return conn.execute(sql, params)
        except self._psycopg.Error as exc:
            raise translated(exc) from exc

    def _rollback(self, conn: psycopg.Connection[Any]) -> None:
        try:
            conn.execute("ROLLBACK")
        except self._psycopg.Error:
            self._drop()  # gone with the connection: the server rolls it back itself

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One operation, all or nothing, in bounded time; a lost database is StoreUnavailable."""
        conn, guard = self._open()
        try:
            try:
                yield
            except BaseException:
                self._rollback(conn)
                raise
            self._run(conn, "COMMIT")
        except StoreUnavailable:
            self._drop()
            if guard.fired:
                raise _overdue(self._transaction_timeout) from None
            raise
        finally:
            _WATCHDOG.disarm(guard)
            if guard.fired:
                self._drop()

    def _open(self) -> tuple[psycopg.Connection[Any], _Guard]:
        """A transaction begun, its deadline armed; once more on a fresh connection if
        the one kept died while idle (a restarted server, a failover), so that the
        first login after it is not refused for nothing."""
        for attempt in (1, 2):
            conn = self._connection()
            guard = _WATCHDOG.arm(conn.fileno(), self._transaction_timeout)
            try:
                conn.execute(self._begin)
            except self._psycopg.Error as exc:
                _WATCHDOG.disarm(guard)
                retry = attempt == 1 and conn.closed and not guard.fired
                self._drop()
                if retry:
                    continue
                if guard.fired:
                    raise _overdue(self._transaction_timeout) from None
                raise translated(exc) from exc
            return conn, guard
        raise AssertionError("unreachable")

    def _execute(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        if self._conn is None:
            raise StoreUnavailable("the connection to the database was lost in this transaction")
        return self._run(self._conn, sql, params)

    # --- settings that belong to the database itself -------------------------------

    def get_meta(self, key: str) -> bytes | None:
        row = self._execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        self._execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- reading: names in byte order, as SQLite sorts them ---------------------------

    def get_user(self, name: str) -> UserRow | None:
        row = self._execute(f"{SELECT_USER} WHERE name = %s", (name,)).fetchone()
        return UserRow(*row) if row else None

    def list_users(self) -> list[UserRow]:
        rows = self._execute(f'{SELECT_USER} ORDER BY name COLLATE "C"').fetchall()
        return [UserRow(*row) for row in rows]

    def user_names(self) -> list[str]:
        rows = self._execute('SELECT name FROM users ORDER BY name COLLATE "C"').fetchall()
        return [name for (name,) in rows]

    def recovery_codes(self, user: str) -> list[RecoveryRow]:
        rows = self._execute(
            'SELECT id, digest, used_at FROM recovery_codes WHERE "user" = %s ORDER BY id',
            (user,),
        ).fetchall()
        return [RecoveryRow(code_id, bytes(digest), used_at) for code_id, digest, used_at in rows]

    def unused_recovery_count(self, user: str) -> int:
        row = self._execute(
            'SELECT count(*) FROM recovery_codes WHERE "user" = %s AND used_at IS NULL', (user,)
        ).fetchone()
        return int(row[0]) if row else 0

    # --- the named writes (the rest are NamedWrites' over the statements below) -------

    def spend_recovery_code(self, code_id: int, now: float) -> None:
        cursor = self._execute(
            "UPDATE recovery_codes SET used_at = %s WHERE id = %s AND used_at IS NULL",
            (now, code_id),
        )
        if cursor.rowcount != 1:
            raise Conflict("recovery code spent concurrently")

    def delete_user(self, row: UserRow) -> None:
        cursor = self._execute(
            "DELETE FROM users WHERE name = %s AND version = %s", (row.name, row.version)
        )
        if cursor.rowcount != 1:
            raise Conflict(f"user {row.name!r} changed concurrently")

    # --- the statements behind them: column names are this package's own constants ----

    def _insert(self, name: str, now: float, values: dict[str, Any]) -> None:
        columns = {"name": name, "created_at": now, **values}
        marks = ", ".join(["%s"] * len(columns))
        cursor = self._execute(
            f"INSERT INTO users ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608
            "ON CONFLICT (name) DO NOTHING",
            tuple(columns.values()),
        )
        if cursor.rowcount != 1:
            raise Conflict(f"user {name!r} was created concurrently")

    def _update(
        self, row: UserRow, changes: dict[str, Any], *, also: str = "", only_if: str = ""
    ) -> None:
        assignments = also + "".join(f"{column} = %s, " for column in changes)
        condition = f" AND {only_if}" if only_if else ""
        cursor = self._execute(
            f"UPDATE users SET {assignments}version = version + 1 "  # noqa: S608
            f"WHERE name = %s AND version = %s{condition}",
            (*changes.values(), row.name, row.version),
        )
        if cursor.rowcount != 1:
            raise Conflict(f"user {row.name!r} changed concurrently")

    def _replace_codes(self, user: str, digests: Sequence[bytes], now: float) -> None:
        self._execute('DELETE FROM recovery_codes WHERE "user" = %s', (user,))
        if digests:
            # One statement for them all, ids in the order given.
            self._execute(
                'INSERT INTO recovery_codes ("user", digest, created_at) '
                "SELECT %s, digest, %s FROM unnest(%s::bytea[]) WITH ORDINALITY AS d(digest, n) "
                "ORDER BY n",
                (user, now, list(digests)),
            )


class PostgresPool:
    """Up to `size` PostgresStore connections to `conninfo`; options go to each store."""

    def __init__(self, conninfo: str, size: int = 4, *, wait: float = 2.0, **options: Any) -> None:
        if size < 1:
            raise ValueError("a pool holds at least one connection")
        checked_conninfo(conninfo)  # a password is refused now, not at the first login
        self._conninfo = conninfo
        self._options = options
        self.size = size
        self._wait = wait
        self._idle: list[PostgresStore] = []
        self._made = 0  # connections handed out or idle
        self._closed = False
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return f"<PostgresPool {self._made}/{self.size}>"

    @contextmanager
    def connection(self) -> Iterator[PostgresStore]:
        """A connection for this caller alone until the block ends."""
        store = self._acquire()
        try:
            yield store
        finally:
            self._release(store)

    def close(self) -> None:
        """Close the idle connections now, the others as they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._made -= len(idle)
            self._cond.notify_all()
        for store in idle:
            store.close()

    def _acquire(self) -> PostgresStore:
        deadline = time.monotonic() + self._wait
        with self._cond:
            while True:
                if self._closed:
                    raise StoreError("the pool of database connections is closed")
                if self._idle:
                    return self._idle.pop()
                if self._made < self.size:
                    self._made += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(
                        f"all {self.size} database connections stayed busy for {self._wait:g} s"
                    )
                self._cond.wait(left)
        try:  # connecting happens outside the lock: the others need not wait on it
            return PostgresStore(self._conninfo, **self._options)
        except BaseException:
            with self._cond:
                self._made -= 1
                self._cond.notify()
            raise

    def _release(self, store: PostgresStore) -> None:
        with self._cond:
            keep = store.connected and not self._closed
            if keep:
                self._idle.append(store)
            else:
                self._made -= 1
            self._cond.notify()
        if not keep:
            store.close()
