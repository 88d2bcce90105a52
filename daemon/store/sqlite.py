"""The SQLite backend: one database file in WAL mode, and the migrations of its schema.

Every named write (writes.NamedWrites, over this module's statements) is one UPDATE
(or INSERT, or DELETE) conditional on the row's ``version``, and a recovery code is
only spent while it is still unspent.  Under SQLite's ``BEGIN IMMEDIATE`` two daemons
on one file take turns, so these rarely lose; they are what keeps the rules true where
two connections read the same row before either writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .interface import Conflict, DeviceRow, RecoveryRow, StoreError, UserRow
from .writes import (
    DEVICE_ORDER,
    SELECT_DEVICE,
    SELECT_USER,
    NamedWrites,
    conditional_update,
    device_of,
    user_of,
)

SCHEMA_VERSION = 7

# Migration N takes the schema from version N-1 to N.  Never edit one that shipped.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE users (
        name               TEXT PRIMARY KEY,
        version            INTEGER NOT NULL DEFAULT 0,
        created_at         REAL NOT NULL,
        secret             BLOB,
        algorithm          TEXT,
        digits             INTEGER,
        period             INTEGER,
        enrolled_at        REAL,
        pending_secret     BLOB,
        pending_algorithm  TEXT,
        pending_digits     INTEGER,
        pending_period     INTEGER,
        pending_since      REAL,
        last_step          INTEGER,
        drift              INTEGER NOT NULL DEFAULT 0,
        failures           INTEGER NOT NULL DEFAULT 0,
        locked_until       REAL,
        hard_locked        INTEGER NOT NULL DEFAULT 0,
        last_success       REAL,
        last_failure       REAL
    ) WITHOUT ROWID;
    CREATE TABLE recovery_codes (
        id         INTEGER PRIMARY KEY,
        user       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        digest     BLOB NOT NULL,
        created_at REAL NOT NULL,
        used_at    REAL,
        UNIQUE (user, digest)
    );
    """,
    2: """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    """,
    # A secret imported with its own tolerance (google-authenticator's WINDOW_SIZE)
    # keeps it; NULL means the policy's totp.window.
    3: """
    ALTER TABLE users ADD COLUMN totp_window INTEGER;
    """,
    # A lifetime count of failed codes that a success does not reset (the hard lock
    # counts these), and the last few failures with where they came from, so that the
    # owner's own typos can be forgiven.  Existing rows start from their failures.
    4: """
    ALTER TABLE users ADD COLUMN strikes INTEGER NOT NULL DEFAULT 0;
    UPDATE users SET strikes = failures;
    ALTER TABLE users ADD COLUMN recent_failures TEXT;
    """,
    # Which host a code was last accepted on: with one store for a fleet, "last login"
    # says where as well as when.
    5: """
    ALTER TABLE users ADD COLUMN last_host TEXT;
    """,
    # Several devices per account, each its own key, parameters, steps and last use.
    # Every account with a key gets one device, "phone", with the key's last step, drift
    # and tolerance, and the account's last login as its last use; a key being set up
    # becomes a pending device (one that renews the account, where a key was active).
    6: """
    CREATE TABLE devices (
        owner         TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        secret        BLOB NOT NULL,
        algorithm     TEXT NOT NULL,
        digits        INTEGER NOT NULL,
        period        INTEGER NOT NULL,
        added_at      REAL NOT NULL,
        confirmed_at  REAL,
        last_step     INTEGER,
        drift         INTEGER NOT NULL DEFAULT 0,
        totp_window   INTEGER,
        last_used     REAL,
        renews        INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (owner, name)
    ) WITHOUT ROWID;
    INSERT INTO devices (owner, name, secret, algorithm, digits, period, added_at,
                         confirmed_at, last_step, drift, totp_window, last_used, renews)
        SELECT name, 'phone', secret, coalesce(algorithm, 'SHA1'), coalesce(digits, 6),
               coalesce(period, 30), coalesce(enrolled_at, created_at),
               coalesce(enrolled_at, created_at), last_step, drift, totp_window,
               last_success, 0
        FROM users WHERE secret IS NOT NULL;
    INSERT INTO devices (owner, name, secret, algorithm, digits, period, added_at,
                         confirmed_at, last_step, drift, totp_window, last_used, renews)
        SELECT name, CASE WHEN secret IS NULL THEN 'phone' ELSE 'phone 2' END,
               pending_secret, coalesce(pending_algorithm, 'SHA1'),
               coalesce(pending_digits, 6), coalesce(pending_period, 30),
               coalesce(pending_since, created_at), NULL, NULL, 0, NULL, NULL,
               CASE WHEN secret IS NULL THEN 0 ELSE 1 END
        FROM users WHERE pending_secret IS NOT NULL;
    ALTER TABLE users DROP COLUMN secret;
    ALTER TABLE users DROP COLUMN algorithm;
    ALTER TABLE users DROP COLUMN digits;
    ALTER TABLE users DROP COLUMN period;
    ALTER TABLE users DROP COLUMN pending_secret;
    ALTER TABLE users DROP COLUMN pending_algorithm;
    ALTER TABLE users DROP COLUMN pending_digits;
    ALTER TABLE users DROP COLUMN pending_period;
    ALTER TABLE users DROP COLUMN pending_since;
    ALTER TABLE users DROP COLUMN last_step;
    ALTER TABLE users DROP COLUMN drift;
    ALTER TABLE users DROP COLUMN totp_window;
    """,
    # Codes by email: the account's proven address, one being proven (with its code's
    # keyed hash and expiry), the login code mailed last (likewise), and when codes
    # were mailed within the last day (the rate limit).
    7: """
    ALTER TABLE users ADD COLUMN email TEXT;
    ALTER TABLE users ADD COLUMN email_pending TEXT;
    ALTER TABLE users ADD COLUMN email_pending_digest BLOB;
    ALTER TABLE users ADD COLUMN email_pending_expires REAL;
    ALTER TABLE users ADD COLUMN email_code_digest BLOB;
    ALTER TABLE users ADD COLUMN email_code_expires REAL;
    ALTER TABLE users ADD COLUMN email_sends TEXT;
    """,
}


class SqliteStore(NamedWrites):
    """One connection to the database file at `path`; use every method inside ``transaction()``."""

    MARK = "?"

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 5000")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal" and path != ":memory:":
            raise StoreError(f"{path}: cannot switch the database to WAL mode")
        # NORMAL in WAL mode survives any crash of the process; only a power loss can
        # drop the last commits, and a time step is stale ninety seconds later anyway.
        self._db.execute(f"PRAGMA synchronous = {synchronous}")
        self._db.execute("PRAGMA foreign_keys = ON")
        # 16 MiB of page cache keeps the users' index of 100,000 accounts in memory.
        self._db.execute("PRAGMA cache_size = -16384")
        self._migrate()

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        with self.transaction():
            current = self._db.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this twofad "
                    f"understands ({SCHEMA_VERSION}); upgrade twofad"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One operation, all or nothing; IMMEDIATE so two writers never deadlock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # --- settings that belong to the database itself -------------------------------

    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- reading ---------------------------------------------------------------------

    def get_user(self, name: str) -> UserRow | None:
        row = self._db.execute(f"{SELECT_USER} WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        devices = self._db.execute(f"{SELECT_DEVICE} WHERE owner = ? {DEVICE_ORDER}", (name,))
        return user_of(row, [device_of(device[1:]) for device in devices])

    def list_users(self) -> list[UserRow]:
        devices: dict[str, list[DeviceRow]] = {}
        for device in self._db.execute(f"{SELECT_DEVICE} {DEVICE_ORDER}"):
            devices.setdefault(device[0], []).append(device_of(device[1:]))
        rows = self._db.execute(f"{SELECT_USER} ORDER BY name")
        return [user_of(row, devices.get(row[0], [])) for row in rows]

    def user_names(self) -> list[str]:
        return [name for (name,) in self._db.execute("SELECT name FROM users ORDER BY name")]

    def recovery_codes(self, user: str) -> list[RecoveryRow]:
        rows = self._db.execute(
            "SELECT id, digest, used_at FROM recovery_codes WHERE user = ? ORDER BY id", (user,)
        )
        return [RecoveryRow(*row) for row in rows]

    def unused_recovery_count(self, user: str) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM recovery_codes WHERE user = ? AND used_at IS NULL", (user,)
        ).fetchone()
        return int(row[0])

    # --- the named writes (the rest are NamedWrites' over the statements below) -------

    def spend_recovery_code(self, code_id: int, now: float) -> None:
        cursor = self._db.execute(
            "UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at IS NULL",
            (now, code_id),
        )
        if cursor.rowcount != 1:
            raise Conflict("recovery code spent concurrently")

    def delete_user(self, row: UserRow) -> None:
        cursor = self._db.execute(
            "DELETE FROM users WHERE name = ? AND version = ?", (row.name, row.version)
        )
        if cursor.rowcount != 1:
            raise Conflict(f"user {row.name!r} changed concurrently")

    # --- the statements behind them: column names are this module's own constants -----

    def _insert(self, name: str, now: float, values: dict[str, Any]) -> None:
        columns = {"name": name, "created_at": now, **values}
        marks = ", ".join("?" * len(columns))
        try:
            self._db.execute(
                f"INSERT INTO users ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                tuple(columns.values()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"user {name!r} was created concurrently") from None

    def _update(
        self, row: UserRow, changes: dict[str, Any], *, also: str = "", only_if: str = ""
    ) -> None:
        statement = conditional_update(changes, also, only_if, "?")
        cursor = self._db.execute(statement, (*changes.values(), row.name, row.version))
        if cursor.rowcount != 1:
            raise Conflict(f"user {row.name!r} changed concurrently")

    def _changed(self, sql: str, params: Sequence[Any]) -> int:
        return self._db.execute(sql, params).rowcount

    def _replace_codes(self, user: str, digests: Sequence[bytes], now: float) -> None:
        self._db.execute("DELETE FROM recovery_codes WHERE user = ?", (user,))
        self._db.executemany(
            "INSERT INTO recovery_codes (user, digest, created_at) VALUES (?, ?, ?)",
            [(user, digest, now) for digest in digests],
        )
