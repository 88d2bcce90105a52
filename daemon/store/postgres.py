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

The schema and its migrations are in pg_schema, the connection's bounds and the
meaning of its errors in pg_link, and `PostgresPool` (up to N such stores for a
daemon's worker threads) in pg_pool.  psycopg 3 is imported only when a PostgreSQL
store is made, so the SQLite default needs nothing more than the standard library.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from .interface import (
    Conflict,
    DeviceRow,
    RecoveryRow,
    StoreError,
    StoreUnavailable,
    UserRow,
)
from .pg_link import (
    CONNECT_DEFAULTS,
    WATCHDOG,
    Guard,
    checked_conninfo,
    first_line,
    ms,
    overdue,
    psycopg_module,
    refused_for_good,
    translated,
)
from .pg_schema import MIGRATION_LOCK, MIGRATIONS, SCHEMA_VERSION
from .writes import (
    DEVICE_ORDER,
    SELECT_DEVICE,
    SELECT_USER,
    NamedWrites,
    conditional_update,
    device_of,
    user_of,
)

if TYPE_CHECKING:
    import psycopg


class PostgresStore(NamedWrites):
    """One connection to a PostgreSQL database; use every method inside ``transaction()``.

    `conninfo` is a libpq URI or key=value string without a password.  The connection
    is made (and the schema migrated) at once, unless `connect_now` is false: then at
    the first transaction.  Either raises StoreUnavailable if the database cannot be
    reached; a later transaction tries again.  One thread at a time, like SqliteStore.
    """

    MARK = "%s"

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
        self._psycopg = psycopg_module()
        given = checked_conninfo(conninfo)
        defaults = {
            **CONNECT_DEFAULTS,
            # libpq counts whole seconds, and takes fewer than 2 as 2
            "connect_timeout": str(max(2, round(connect_timeout))),
            "tcp_user_timeout": str(ms(transaction_timeout)),
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
            f"SET LOCAL statement_timeout = {ms(statement)}; "
            f"SET LOCAL lock_timeout = {ms(lock)}; "
            f"SET LOCAL idle_in_transaction_session_timeout = {ms(idle)}"
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
                    f"the database refuses twofad: {first_line(exc)} (a configuration "
                    "error, not an outage: every login is refused until it is fixed)"
                ) from None
            raise StoreUnavailable(f"cannot connect to the database: {first_line(exc)}") from None
        self._conn = conn
        try:
            self._migrate(conn)
        except BaseException:
            self._drop()
            raise
        return conn

    @contextmanager
    def _bounded(self, conn: psycopg.Connection[Any], seconds: float) -> Iterator[Guard]:
        """The watchdog armed over a block; past `seconds` its message says so."""
        guard = WATCHDOG.arm(conn.fileno(), seconds)
        try:
            yield guard
        except StoreUnavailable:
            self._drop()
            if guard.fired:
                raise overdue(seconds) from None
            raise
        finally:
            WATCHDOG.disarm(guard)
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
                raise overdue(self._transaction_timeout) from None
            raise
        finally:
            WATCHDOG.disarm(guard)
            if guard.fired:
                self._drop()

    def _open(self) -> tuple[psycopg.Connection[Any], Guard]:
        """A transaction begun, its deadline armed; once more on a fresh connection if
        the one kept died while idle (a restarted server, a failover), so that the
        first login after it is not refused for nothing."""
        for attempt in (1, 2):
            conn = self._connection()
            guard = WATCHDOG.arm(conn.fileno(), self._transaction_timeout)
            try:
                conn.execute(self._begin)
            except self._psycopg.Error as exc:
                WATCHDOG.disarm(guard)
                retry = attempt == 1 and conn.closed and not guard.fired
                self._drop()
                if retry:
                    continue
                if guard.fired:
                    raise overdue(self._transaction_timeout) from None
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
        if row is None:
            return None
        devices = self._execute(
            f"{SELECT_DEVICE} WHERE owner = %s {DEVICE_ORDER}", (name,)
        ).fetchall()
        return user_of(row, [device_of(device[1:]) for device in devices])

    def list_users(self) -> list[UserRow]:
        devices: dict[str, list[DeviceRow]] = {}
        for device in self._execute(f"{SELECT_DEVICE} {DEVICE_ORDER}").fetchall():
            devices.setdefault(device[0], []).append(device_of(device[1:]))
        rows = self._execute(f'{SELECT_USER} ORDER BY name COLLATE "C"').fetchall()
        return [user_of(row, devices.get(row[0], [])) for row in rows]

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
        statement = conditional_update(changes, also, only_if, "%s")
        cursor = self._execute(statement, (*changes.values(), row.name, row.version))
        if cursor.rowcount != 1:
            raise Conflict(f"user {row.name!r} changed concurrently")

    def _changed(self, sql: str, params: Sequence[Any]) -> int:
        return self._execute(sql, params).rowcount

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


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "PostgresStore",
    "checked_conninfo",
    "refused_for_good",
]
