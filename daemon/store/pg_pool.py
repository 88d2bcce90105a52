"""A small pool of PostgresStore connections, one per worker thread at a time.

Made when first needed, kept for the next caller, a broken one dropped; waiting for a
free one is bounded too (StoreUnavailable past `wait`), never a login left hanging
behind others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .interface import StoreError, StoreUnavailable
from .pg_link import checked_conninfo
from .postgres import PostgresStore


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
