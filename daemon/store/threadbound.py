"""One Backend for every worker thread, each on a connection of its own from a pool.

The service is written against one store (``Context.store``) and runs each operation
in ``store.transaction()``.  With the store across the network, operations run on
several worker threads at once (``offload``), and a database connection serves one
transaction at a time.  This facade gives the service its one store: a transaction
takes a connection from the pool for the thread that opened it and gives it back at
the end, and every call inside goes to that connection.  A call outside a
transaction (a start-up check) runs in a transaction of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from .interface import Backend


class Pool(Protocol):
    def connection(self) -> AbstractContextManager[Backend]:
        """A connection of the pool's for one use; given back (or dropped) at the end."""
        ...

    def close(self) -> None: ...


class ThreadBound:
    """The pool's connections behind one store, one connection per thread at a time."""

    MARK = ""  # never read here: each named write runs on its connection's own store

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._local = threading.local()

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if getattr(self._local, "store", None) is not None:
            raise RuntimeError("a transaction is already open on this thread")
        with self._pool.connection() as store, store.transaction():
            self._local.store = store
            try:
                yield
            finally:
                self._local.store = None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """Every other method of the Backend, on this thread's connection."""
        if name.startswith("_") or not hasattr(Backend, name):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            store = getattr(self._local, "store", None)
            if store is not None:
                return getattr(store, name)(*args, **kwargs)
            with self.transaction():
                return getattr(self._local.store, name)(*args, **kwargs)

        return call
