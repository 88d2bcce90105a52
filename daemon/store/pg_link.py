"""The connection to PostgreSQL: what a conninfo may hold, how long anything may take,
and what a failure means to twofad.

psycopg is imported here (and only when a PostgreSQL store is made).  A conninfo with a
password is refused; every connection gets bounded connects and keepalives; a watchdog
cuts the socket of a transaction past its bound, for a server that stops answering
altogether; and each psycopg error becomes the store's own: a lost race (Conflict), an
outage (StoreUnavailable), or a refusal (StoreError) — a configuration error among them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import suppress
from types import ModuleType
from typing import Any

from .interface import Conflict, StoreError, StoreUnavailable

# What a conninfo does not say itself: bounded connects and a dead peer noticed.  The
# store always writes, so among several hosts only a primary will do.
CONNECT_DEFAULTS = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "2",
    "target_session_attrs": "read-write",
    "application_name": "twofad",
}


def psycopg_module() -> ModuleType:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "a PostgreSQL store needs psycopg 3: apt install python3-psycopg, "
            "or pip install 'pam-twofa[postgresql]'"
        ) from None
    return psycopg


def checked_conninfo(conninfo: str) -> dict[str, str]:
    """The conninfo's parameters; a StoreError if it is not one, or carries a password.

    The message never repeats the conninfo, nor the parser's words about it (they can
    quote a piece of it), and the parser's exception is not chained.
    """
    psycopg = psycopg_module()
    try:
        params: dict[str, Any] = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        raise StoreError(
            "the PostgreSQL store is neither a postgresql:// URI nor key=value "
            "connection parameters"
        ) from None
    if params.get("password"):
        raise StoreError(
            "the PostgreSQL connection string carries a password: it would show in "
            "command lines, unit files and logs; put it in a libpq password file "
            "(PGPASSFILE or passfile=, mode 0600) or a service file instead"
        )
    timeout = str(params.get("connect_timeout", "0")).strip()
    if not timeout.lstrip("-").isdigit():
        raise StoreError("connect_timeout in the PostgreSQL connection string is whole seconds")
    return {key: str(value) for key, value in params.items()}


def first_line(exc: BaseException) -> str:
    """libpq's own words (host, port, user, what failed), never a password: none is given."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# What the server (or libpq) says when it will go on refusing this daemon, however long
# one waits: a wrong password or role, a database that does not exist, a host not in
# pg_hba.conf, a parameter a pooler refuses, a TLS certificate that does not verify.
# Answered `unavailable`, these would let everyone in under the hook's fail=open (and a
# certificate failure is what a man in the middle causes), so they are `internal`: the
# hook refuses, whatever fail= says.  Being down, starting, shutting down, in recovery
# or out of connection slots are outages, and stay `unavailable`.
REFUSED_FOR_GOOD = (
    "password authentication failed",
    "no password supplied",
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "unsupported startup parameter",
    "certificate",
    "ssl",
    "server does not support",
)


def refused_for_good(exc: BaseException) -> bool:
    """Whether a failed connection is a refusal that waiting will not end."""
    text = str(exc).lower()
    return any(phrase in text for phrase in REFUSED_FOR_GOOD)


def translated(exc: Exception) -> Exception:
    """A psycopg error as the store's own: unavailable, a lost race, or refused.

    By SQLSTATE, not by class: psycopg's class tree differs between versions (3.1's
    DeadlockDetected is no TransactionRollback).
    """
    psycopg = psycopg_module()
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith("40"):  # serialization failure, deadlock: the server undid it
        return Conflict(f"lost to a concurrent transaction ({sqlstate})")
    if sqlstate == "57014":
        return StoreUnavailable("the database did not answer within the statement timeout")
    if sqlstate == "55P03":
        return StoreUnavailable("a row stayed locked by another connection past the lock timeout")
    if sqlstate == "25006":
        return StoreUnavailable("the database is read-only now (a standby, or failing over)")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(f"the database cannot answer now: {first_line(exc)}")
    return StoreError(
        f"the database refused a statement ({sqlstate or 'no SQLSTATE'} {type(exc).__name__})"
    )


def ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def overdue(seconds: float) -> StoreUnavailable:
    return StoreUnavailable(f"the database did not answer within {seconds:g} s")


class Guard:
    """One armed deadline: a duplicate of the connection's socket, to shut down."""

    __slots__ = ("deadline", "fired", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.fired = False


class Watchdog:
    """One thread for every store: cuts the socket of a transaction past its bound.

    The socket is shut down, not closed, through a descriptor of its own (libpq may
    close its descriptor meanwhile, and the number be reused): the connection's next
    read returns at once, psycopg raises, and the store drops the connection.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: set[Guard] = set()
        self._wake_at: float | None = None
        self._thread: threading.Thread | None = None

    def arm(self, fd: int, seconds: float) -> Guard:
        guard = Guard(socket.socket(fileno=os.dup(fd)), time.monotonic() + seconds)
        with self._cond:
            self._armed.add(guard)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="twofad-store-watchdog", daemon=True
                )
                self._thread.start()
            if self._wake_at is None or guard.deadline < self._wake_at:
                self._cond.notify()
        return guard

    def disarm(self, guard: Guard) -> None:
        with self._cond:
            self._armed.discard(guard)
        guard.sock.close()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for guard in [g for g in self._armed if g.deadline <= now]:
                    self._armed.discard(guard)
                    guard.fired = True
                    with suppress(OSError):  # already gone
                        guard.sock.shutdown(socket.SHUT_RDWR)
                self._wake_at = min((g.deadline for g in self._armed), default=None)
                self._cond.wait(None if self._wake_at is None else self._wake_at - now)


WATCHDOG = Watchdog()
