"""What any store of twofad's state must do: the row types, and every write by name.

The service changes an account only through the writes named here, one per kind of
change (a success, a failure, a device begun, confirmed, renamed or removed, devices
taken over, a lock lifted, new recovery codes, the account removed).  Each is
conditional and atomic: it takes the row as the caller read it and raises `Conflict`,
changing nothing, if the row's `version` is no longer that one, so a decision made on
a stale read is never written.  That is what keeps "a time step is accepted once", "a
recovery code works once" and the lock-out counts true when several daemons share one
database; the service then retries from a fresh read.

Every backend (SQLite, PostgreSQL) passes tests/unit/test_store_contract.py.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from .rows import (
    Brought,
    BroughtDevice,
    Conflict,
    DeviceRow,
    RecoveryRow,
    SealedSecret,
    StoreError,
    StoreUnavailable,
    UserRow,
)
from .writes import NamedWrites

__all__ = [
    "Backend",
    "Brought",
    "BroughtDevice",
    "Conflict",
    "DeviceRow",
    "RecoveryRow",
    "SealedSecret",
    "StoreError",
    "StoreUnavailable",
    "UserRow",
]


class Backend(NamedWrites, Protocol):
    """One connection to the state database; use every method inside ``transaction()``."""

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """One operation, all or nothing; a writer never waits on another forever."""
        ...

    # --- reading ---------------------------------------------------------------------

    def get_user(self, name: str) -> UserRow | None: ...

    def list_users(self) -> list[UserRow]: ...

    def user_names(self) -> list[str]:
        """Every name with a row, sorted."""
        ...

    def recovery_codes(self, user: str) -> list[RecoveryRow]: ...

    def unused_recovery_count(self, user: str) -> int: ...

    def get_meta(self, key: str) -> bytes | None: ...

    def set_meta(self, key: str, value: bytes) -> None:
        """A setting of the database itself (the key ring's fingerprint)."""
        ...

    # --- besides the named writes (writes.py): the two that touch no user row ----------

    def spend_recovery_code(self, code_id: int, now: float) -> None:
        """Mark a code used; a Conflict if it was used meanwhile."""
        ...

    def delete_user(self, row: UserRow) -> None:
        """The account's row and its recovery codes removed."""
        ...
