"""twofad's state: accounts, their sealed keys, replay and lock-out state, recovery codes.

The interface any backend implements, and the row types, are in `interface`; the
SQLite backend (the embedded default, and its schema's migrations) in `sqlite`.
`Store` is the SQLite backend, so `Store(path)` opens a database file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .interface import Backend, Conflict, RecoveryRow, SealedSecret, StoreError, UserRow
from .sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore

Store = SqliteStore

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Backend",
    "Conflict",
    "RecoveryRow",
    "SealedSecret",
    "SqliteStore",
    "Store",
    "StoreError",
    "UserRow",
]


if TYPE_CHECKING:

    def _is_a_backend(store: SqliteStore) -> Backend:
        return store  # mypy proves here that the SQLite backend implements the interface
