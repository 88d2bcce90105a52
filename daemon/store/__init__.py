"""twofad's state: accounts, their sealed keys, replay and lock-out state, recovery codes.

The interface any backend implements is in `interface`, the rows and errors it speaks
of in `rows`, the named writes every backend shares (and the interface declares) in
`writes`; the SQLite backend (the embedded
default, and its schema's migrations) in `sqlite`; the PostgreSQL backend (a fleet's
shared store, and a pool of its connections) in `postgres`, which alone needs psycopg.
`Store` is the SQLite backend, so `Store(path)` opens a database file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import interface
from .interface import *  # noqa: F403 (the interface's names are the package's)
from .sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore

Store = SqliteStore

__all__ = [*interface.__all__, "MIGRATIONS", "SCHEMA_VERSION", "SqliteStore", "Store"]


if TYPE_CHECKING:
    from .postgres import PostgresStore

    def _is_a_backend(store: SqliteStore) -> interface.Backend:
        return store  # mypy proves here that the SQLite backend implements the interface

    def _postgres_is_a_backend(store: PostgresStore) -> interface.Backend:
        return store  # and the PostgreSQL backend
