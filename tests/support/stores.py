"""The stores the unit tests run on: every backend of the store contract, and rows to
start from.

A backend here is a database several connections open, as several daemons (or
hosts) would, that can also be left at any earlier schema version for the
migration tests.  Each backend numbers its schema's versions itself (`latest`):
SQLite's file and a PostgreSQL database (a fresh one on the session's server, reached
over 127.0.0.1 with its password in a password file).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import pytest

from twofad.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Backend,
    Brought,
    BroughtDevice,
    SealedSecret,
    Store,
    UserRow,
)
from twofad.store import postgres as pg
from twofad.totp import TotpParams

if TYPE_CHECKING:
    from support.postgres import Database as PgDatabase

SEALED = SealedSecret(b"a key as the key ring seals it", TotpParams())

# What every database left at an earlier version holds (from version 1 on): an account
# with a key, a spent step, failures and a recovery code, and one with a set-up begun.
OLD_ALICE = {"secret": b"sealed", "last_step": 100, "failures": 7, "enrolled_at": 2.0}
OLD_DIGEST = b"d" * 32
# And an account whose key is not the default kind, with a drifted clock, a last login,
# and a renewal begun: its key and the renewal's become two devices.
OLD_CAROL_INSERT = (
    "INSERT INTO users (name, created_at, secret, algorithm, digits, period, enrolled_at, "
    "last_step, drift, last_success, pending_secret, pending_algorithm, pending_digits, "
    "pending_period, pending_since) "
    "VALUES ('carol', 1.0, {m}, 'SHA256', 8, 60, 3.0, 200, -2, 40.0, {m}, 'SHA1', 6, 30, 50.0)"
)
OLD_CAROL_KEYS = (b"carol's key", b"carol's renewal")


def add_user(
    store: Backend,
    name: str,
    digests: Sequence[bytes] = (),
    now: float = 1.0,
    devices: Sequence[str] = ("phone",),
) -> UserRow:
    """An account with active devices (each with the key SEALED) and these recovery
    code digests, as read back."""
    brought = [BroughtDevice(device, SEALED) for device in devices]
    with store.transaction():
        store.take_over(name, None, Brought(brought, digests), now)
        row = store.get_user(name)
    assert row is not None
    return row


class SqliteDatabase:
    """One SQLite file, opened by as many connections as a test asks for."""

    latest: ClassVar[int] = SCHEMA_VERSION
    ONE_KEY: ClassVar[int] = 5  # the last schema with one key per account (then: devices)

    def __init__(self, directory: Path) -> None:
        self.path = directory / "twofad.db"

    @classmethod
    def for_test(cls, request: pytest.FixtureRequest) -> SqliteDatabase:
        return cls(request.getfixturevalue("tmp_path"))

    def connect(self) -> Backend:
        return Store(str(self.path))

    def schema_version(self) -> int:
        with sqlite3.connect(self.path) as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def at_version(self, version: int) -> None:
        """The file as twofad of schema `version` left it (0: none yet), with the rows above."""
        db = sqlite3.connect(self.path)
        # The rows are written in the last shape with one key per account; the later
        # migrations up to `version` then carry them on as they carried real ones.
        for step in range(1, min(version, self.ONE_KEY) + 1):
            db.executescript(MIGRATIONS[step])
        if 1 <= version < self.latest:
            db.execute(
                "INSERT INTO users (name, created_at, secret, algorithm, digits, period, "
                "enrolled_at, last_step, failures) VALUES ('alice', 1.0, ?, 'SHA1', 6, 30, ?, ?, ?)",
                (
                    OLD_ALICE["secret"],
                    OLD_ALICE["enrolled_at"],
                    OLD_ALICE["last_step"],
                    OLD_ALICE["failures"],
                ),
            )
            db.execute(
                "INSERT INTO users (name, created_at, pending_secret, pending_algorithm, "
                "pending_digits, pending_period, pending_since) "
                "VALUES ('bob', 1.0, ?, 'SHA1', 6, 30, 1.0)",
                (b"pending",),
            )
            db.execute(
                "INSERT INTO recovery_codes (user, digest, created_at) VALUES ('alice', ?, 1.0)",
                (OLD_DIGEST,),
            )
            db.execute(OLD_CAROL_INSERT.format(m="?"), OLD_CAROL_KEYS)
            if version >= 4:  # from then on a failure also counted a strike
                db.execute("UPDATE users SET strikes = failures")
        for step in range(self.ONE_KEY + 1, version + 1):
            db.executescript(MIGRATIONS[step])
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()
        db.close()

    def newer_than_known(self) -> None:
        """The file as a later twofad, of a schema this one does not know, would leave it."""
        db = sqlite3.connect(self.path)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
        db.close()


class PostgresDatabase:
    """A fresh database on the test session's PostgreSQL server, opened over TCP."""

    latest: ClassVar[int] = pg.SCHEMA_VERSION
    ONE_KEY: ClassVar[int] = 2  # the last schema with one key per account (then: devices)

    def __init__(self, database: PgDatabase) -> None:
        self.database = database

    @classmethod
    def for_test(cls, request: pytest.FixtureRequest) -> PostgresDatabase:
        return cls(request.getfixturevalue("postgres_database"))

    def connect(self) -> Backend:
        return pg.PostgresStore(self.database.conninfo)

    def schema_version(self) -> int:
        [(version,)] = self.database.execute("SELECT max(version) FROM schema_version")
        return int(version)

    def at_version(self, version: int) -> None:
        """The database as twofad of schema `version` left it (0: empty), with the rows above."""
        for step in range(1, min(version, self.ONE_KEY) + 1):
            self._migrate(step)
        if 1 <= version < self.latest:  # in the last shape with one key, carried on below
            self.database.execute(
                # PostgreSQL's first schema already counted strikes with each failure.
                "INSERT INTO users (name, created_at, secret, algorithm, digits, period, "
                "enrolled_at, last_step, failures, strikes) "
                "VALUES ('alice', 1.0, %s, 'SHA1', 6, 30, %s, %s, %s, %s)",
                (
                    OLD_ALICE["secret"],
                    OLD_ALICE["enrolled_at"],
                    OLD_ALICE["last_step"],
                    OLD_ALICE["failures"],
                    OLD_ALICE["failures"],
                ),
            )
            self.database.execute(
                "INSERT INTO users (name, created_at, pending_secret, pending_algorithm, "
                "pending_digits, pending_period, pending_since) "
                "VALUES ('bob', 1.0, %s, 'SHA1', 6, 30, 1.0)",
                (b"pending",),
            )
            self.database.execute(OLD_CAROL_INSERT.format(m="%s"), OLD_CAROL_KEYS)
            self.database.execute(
                'INSERT INTO recovery_codes ("user", digest, created_at) '
                "VALUES ('alice', %s, 1.0)",
                (OLD_DIGEST,),
            )
        for step in range(self.ONE_KEY + 1, version + 1):
            self._migrate(step)

    def _migrate(self, step: int) -> None:
        self.database.execute(pg.MIGRATIONS[step])
        self.database.execute("INSERT INTO schema_version (version) VALUES (%s)", (step,))

    def newer_than_known(self) -> None:
        """The database as a later twofad, of a schema this one does not know, left it."""
        self.at_version(self.latest)
        self.database.execute(
            "INSERT INTO schema_version (version) VALUES (%s)", (self.latest + 1,)
        )


class Database(Protocol):
    """What each backend gives the contract tests."""

    latest: ClassVar[int]  # the schema version this twofad writes

    def connect(self) -> Backend: ...

    def schema_version(self) -> int: ...

    def at_version(self, version: int) -> None: ...

    def newer_than_known(self) -> None: ...


class Backing(Protocol):
    """A backend's class: its schema's latest version, and a database for one test."""

    latest: int

    def for_test(self, request: pytest.FixtureRequest) -> Database: ...


BACKENDS: dict[str, Backing] = {"sqlite": SqliteDatabase, "postgres": PostgresDatabase}
