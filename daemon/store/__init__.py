"""twofad's state: accounts, their sealed keys, replay and lock-out state, recovery codes.

The interface any backend implements, and the row types, are in `interface`; the
named writes every backend shares in `writes`; the SQLite backend (the embedded
default, and its schema's migrations) in `sqlite`; the PostgreSQL backend (a fleet's
shared store, and a pool of its connections) in `postgres`, which alone needs psycopg.
`Store` is the SQLite backend, so `Store(path)` opens a database file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .interface import (
    Backend,
    Conflict,
    RecoveryRow,
    SealedSecret,
    StoreError,
    StoreUnavailable,
    UserRow,
)
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
    "StoreUnavailable",
    "UserRow",
]


if TYPE_CHECKING:
    from .postgres import PostgresStore

    def _is_a_backend(store: SqliteStore) -> Backend:
        return store  # mypy proves here that the SQLite backend implements the interface

    def _postgres_is_a_backend(store: PostgresStore) -> Backend:
        return store  # and the PostgreSQL backend
