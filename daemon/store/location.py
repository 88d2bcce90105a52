"""Where twofad's state lives, as a URL: a SQLite file on this host, or PostgreSQL.

``sqlite:///var/lib/twofad/twofad.db`` is the embedded default (what ``--state-dir``
gives); a libpq connection string (``postgresql://twofad@db1,db2/twofa?...``,
``postgresql:///twofa?host=/run/postgresql``, ``service=twofa``) is one database a
fleet's daemons share.  A password has no place in either: libpq reads it from the
daemon's passfile or service file, so it never shows in a command line, a unit file,
the policy or a log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .interface import Backend, StoreError

SQLITE = "sqlite://"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
POOL_SIZE = 4  # connections per daemon, one per worker thread


@dataclass(frozen=True)
class Opened:
    """A store, and whether it may be slow to answer (so requests go to worker threads)."""

    store: Backend
    remote: bool
    description: str  # for the log: never the password, which is never in the URL anyway


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES) or (
        "=" in location and "://" not in location  # libpq's key=value form: service=NAME
    )


def sqlite_path(location: str) -> str:
    """The file of a ``sqlite:///PATH`` URL: an absolute path, nothing else."""
    path = location[len(SQLITE) :]
    if not location.startswith(SQLITE) or not path.startswith("/") or "?" in path:
        raise StoreError(
            f"{location!r} is not a store URL this twofad reads: use sqlite:///ABSOLUTE/PATH "
            "or a PostgreSQL connection string (postgresql://... or service=NAME)"
        )
    return os.path.normpath(path)


def open_store(location: str, pool_size: int = POOL_SIZE) -> Opened:
    """Open the store at `location`; a StoreError says what is wrong with it."""
    if is_postgres(location):
        from .pg_link import checked_conninfo
        from .pg_pool import PostgresPool
        from .threadbound import ThreadBound

        shown = checked_conninfo(location)  # refuses a password, says why
        pool = PostgresPool(location, size=pool_size)
        where = ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
        return Opened(ThreadBound(pool), True, f"PostgreSQL ({where or 'libpq defaults'})")
    from .sqlite import SqliteStore

    path = sqlite_path(location)
    return Opened(SqliteStore(path), False, f"SQLite at {path}")
