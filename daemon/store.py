"""SQLite state: users, their sealed secrets, replay and lock-out state, recovery codes.

Every change is a compare-and-set: ``update_user`` only writes when the row's
``version`` is still the one the caller read, and a recovery code is only spent while
it is still unspent.  Under SQLite's ``BEGIN IMMEDIATE`` these never lose, but the same
statements keep replay and lock-out rules true on a database shared by several hosts,
where two daemons may read the same row at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from . import lockout, totp

SCHEMA_VERSION = 4

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
}


class StoreError(Exception):
    """The database cannot be used: newer than this program, or not a twofad database."""


class Conflict(Exception):
    """A compare-and-set lost to a concurrent change; the operation should be retried."""


@dataclass(frozen=True)
class UserRow:
    name: str
    version: int
    created_at: float
    secret: bytes | None
    algorithm: str | None
    digits: int | None
    period: int | None
    enrolled_at: float | None
    pending_secret: bytes | None
    pending_algorithm: str | None
    pending_digits: int | None
    pending_period: int | None
    pending_since: float | None
    last_step: int | None
    drift: int
    failures: int
    locked_until: float | None
    hard_locked: int
    last_success: float | None
    last_failure: float | None
    totp_window: int | None
    strikes: int
    recent_failures: str | None  # lockout.encode_recent's text; None when there are none

    @property
    def active(self) -> bool:
        return self.secret is not None

    @property
    def params(self) -> totp.TotpParams:
        """How the active key's codes are made."""
        return totp.TotpParams(self.algorithm or "SHA1", self.digits or 6, self.period or 30)

    @property
    def pending_params(self) -> totp.TotpParams:
        """How the codes of a key being set up are made."""
        return totp.TotpParams(
            self.pending_algorithm or "SHA1", self.pending_digits or 6, self.pending_period or 30
        )

    @property
    def lock(self) -> lockout.LockState:
        """The account's lock-out state: the one place it is read from the columns."""
        return lockout.LockState(
            self.failures,
            self.locked_until,
            bool(self.hard_locked),
            self.strikes,
            lockout.decode_recent(self.recent_failures),
        )


def lock_columns(state: lockout.LockState) -> dict[str, Any]:
    """A lock state as the users table holds it: the inverse of ``UserRow.lock``."""
    return {
        "failures": state.failures,
        "strikes": state.strikes,
        "recent_failures": lockout.encode_recent(state.recent),
        "locked_until": state.locked_until,
        "hard_locked": int(state.hard_locked),
    }


# A new key (or an administrator's unlock) starts both counts afresh: guesses at an
# old key tell nothing about the new one.
CLEAR_LOCK = lock_columns(lockout.LockState(0, None, False))


USER_COLUMNS = tuple(f.name for f in fields(UserRow))
_SELECT_USER = f"SELECT {', '.join(USER_COLUMNS)} FROM users"  # noqa: S608 (constant columns)


@dataclass(frozen=True)
class RecoveryRow:
    id: int
    digest: bytes
    used_at: float | None


class Store:
    """One connection to the state database; use every method inside ``transaction()``."""

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

    # --- users ---------------------------------------------------------------------

    def get_user(self, name: str) -> UserRow | None:
        row = self._db.execute(f"{_SELECT_USER} WHERE name = ?", (name,)).fetchone()
        return UserRow(*row) if row else None

    def list_users(self) -> list[UserRow]:
        return [UserRow(*row) for row in self._db.execute(f"{_SELECT_USER} ORDER BY name")]

    def user_names(self) -> list[str]:
        return [name for (name,) in self._db.execute("SELECT name FROM users ORDER BY name")]

    def insert_user(self, name: str, now: float, **values: Any) -> None:
        columns = {"name": name, "created_at": now, **values}
        _check_columns(columns)
        marks = ", ".join("?" * len(columns))
        try:
            self._db.execute(
                f"INSERT INTO users ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                tuple(columns.values()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"user {name!r} was created concurrently") from None

    def update_user(self, row: UserRow, **changes: Any) -> None:
        """Write `changes` only if nobody changed the row since `row` was read.

        With no changes it only claims the row: a write to rows that hang off it, such
        as the recovery codes, then conflicts with any other writer of that user.
        """
        _check_columns(changes)
        assignments = "".join(f"{column} = ?, " for column in changes)
        cursor = self._db.execute(
            f"UPDATE users SET {assignments}version = version + 1 "  # noqa: S608
            "WHERE name = ? AND version = ?",
            (*changes.values(), row.name, row.version),
        )
        if cursor.rowcount != 1:
            raise Conflict(f"user {row.name!r} changed concurrently")

    def delete_user(self, row: UserRow) -> None:
        cursor = self._db.execute(
            "DELETE FROM users WHERE name = ? AND version = ?", (row.name, row.version)
        )
        if cursor.rowcount != 1:
            raise Conflict(f"user {row.name!r} changed concurrently")

    # --- recovery codes -----------------------------------------------------------

    def recovery_codes(self, user: str) -> list[RecoveryRow]:
        rows = self._db.execute(
            "SELECT id, digest, used_at FROM recovery_codes WHERE user = ? ORDER BY id", (user,)
        )
        return [RecoveryRow(*row) for row in rows]

    def spend_recovery_code(self, code_id: int, now: float) -> None:
        cursor = self._db.execute(
            "UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at IS NULL",
            (now, code_id),
        )
        if cursor.rowcount != 1:
            raise Conflict("recovery code spent concurrently")

    def replace_recovery_codes(self, user: str, digests: list[bytes], now: float) -> None:
        self._db.execute("DELETE FROM recovery_codes WHERE user = ?", (user,))
        self._db.executemany(
            "INSERT INTO recovery_codes (user, digest, created_at) VALUES (?, ?, ?)",
            [(user, digest, now) for digest in digests],
        )

    def unused_recovery_count(self, user: str) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM recovery_codes WHERE user = ? AND used_at IS NULL", (user,)
        ).fetchone()
        return int(row[0])


def _check_columns(values: dict[str, Any]) -> None:
    """Column names go into SQL text, so only the known ones may pass."""
    unknown = set(values) - set(USER_COLUMNS)
    if unknown or "version" in values:
        raise ValueError(
            f"not writable user columns: {sorted(unknown | {'version'} & set(values))}"
        )
