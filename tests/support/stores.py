"""The stores the unit tests run on: every backend of the store contract, and rows to
start from.

A backend here is a database several connections open, as several daemons (or
hosts) would, that can also be left at any earlier schema version for the
migration tests.  Only SQLite today; PostgreSQL joins BACKENDS with its own class.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from twofad.store import MIGRATIONS, SCHEMA_VERSION, Backend, SealedSecret, Store, UserRow
from twofad.totp import TotpParams

SEALED = SealedSecret(b"a key as the key ring seals it", TotpParams())

# What every database left at an earlier version holds (from version 1 on): an account
# with a key, a spent step, failures and a recovery code, and one with a set-up begun.
OLD_ALICE = {"secret": b"sealed", "last_step": 100, "failures": 7, "enrolled_at": 2.0}
OLD_DIGEST = b"d" * 32


def add_user(store: Backend, name: str, digests: Sequence[bytes] = (), now: float = 1.0) -> UserRow:
    """An account with an active key (and these recovery code digests), as read back."""
    with store.transaction():
        store.take_over(
            name, None, SEALED, now, last_step=None, window=None, recovery_digests=digests
        )
        row = store.get_user(name)
    assert row is not None
    return row


class SqliteDatabase:
    """One SQLite file, opened by as many connections as a test asks for."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "twofad.db"

    def connect(self) -> Backend:
        return Store(str(self.path))

    def schema_version(self) -> int:
        with sqlite3.connect(self.path) as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def at_version(self, version: int) -> None:
        """The file as twofad of schema `version` left it (0: none yet), with the rows above."""
        db = sqlite3.connect(self.path)
        for step in range(1, version + 1):
            db.executescript(MIGRATIONS[step])
        if version >= 1:
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
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()
        db.close()

    def newer_than_known(self) -> None:
        """The file as a later twofad, of a schema this one does not know, would leave it."""
        db = sqlite3.connect(self.path)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
        db.close()


class Database(Protocol):
    """What each backend gives the contract tests."""

    def connect(self) -> Backend: ...

    def schema_version(self) -> int: ...

    def at_version(self, version: int) -> None: ...

    def newer_than_known(self) -> None: ...


BACKENDS: dict[str, Callable[[Path], Database]] = {"sqlite": SqliteDatabase}
