"""What every operation works over, and the plumbing they share.

An operation is a function of a `Context`: the store, the keys, the policy in force,
the clock, the directory of accounts, and the memory of names with no account.  The
server builds one context and replaces only its policy at a reload, so every operation
sees the new policy at once.  `atomic` runs an operation in one transaction with the
time read once, and again from a fresh read if a compare-and-set lost a race.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pam_twofa import protocol as p

from .. import lockout
from ..directory import Directory
from ..keys import Keys
from ..policy import Policy
from ..store import Backend, Conflict, UserRow
from .decoys import Decoys
from .replies import ServiceError as ServiceError

T = TypeVar("T")
Clock = Callable[[], float]
CAS_ATTEMPTS = 8
PAGE_SIZE = p.MAX_PAGE  # entries per listing reply; the protocol bounds what fits

# Where a code typed to the daemon's own commands comes from (twofa, twofactl resync):
# not a PAM login, and never the same origin as one.
COMMAND_ORIGIN = lockout.origin_of(None, None)


@dataclass
class Context:
    store: Backend
    keys: Keys
    policy: Policy  # replaced at a reload; read it where it is used, never keep a copy
    clock: Clock
    directory: Directory
    decoys: Decoys = field(default_factory=Decoys)
    host: str = field(default_factory=socket.gethostname)  # this host, in a fleet's store

    def atomic(self, operation: Callable[[float], T]) -> T:
        """Run `operation(now)` in one transaction, again from scratch if it lost a race."""
        for _ in range(CAS_ATTEMPTS):
            try:
                with self.store.transaction():
                    return operation(self.clock())
            except Conflict:
                continue
        raise ServiceError(p.INTERNAL, "the database is too busy right now; try again")

    def require_account(self, user: str) -> None:
        """Refuse a name the directory does not know: state is kept for accounts only."""
        if self.directory.uid_of(user) is None:
            raise ServiceError(p.UNKNOWN_USER, f"no such user: {user}")

    def known_row(self, user: str) -> UserRow:
        """The user's row, or the right error: unknown user, or known but not set up."""
        row = self.store.get_user(user)
        if row is not None:
            return row
        self.require_account(user)
        raise ServiceError(p.NOT_ENROLLED, f"{user} has not set up two-step verification")

    def active_row(self, user: str) -> UserRow:
        row = self.known_row(user)
        if not row.active:
            raise ServiceError(p.NOT_ENROLLED, f"{user} has not confirmed two-step verification")
        return row
