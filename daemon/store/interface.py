"""What any store of twofad's state must do: the row types, and every write by name.

The service changes an account only through the writes named here, one per kind of
change (a success, a failure, a key begun, confirmed or taken over, a lock lifted,
new recovery codes, the account removed).  Each is conditional and atomic: it takes
the row as the caller read it and raises `Conflict`, changing nothing, if the row's
`version` is no longer that one, so a decision made on a stale read is never written.
That is what keeps "a time step is accepted once", "a recovery code works once" and
the lock-out counts true when several daemons share one database; the service then
retries from a fresh read.

Every backend (SQLite, PostgreSQL) passes tests/unit/test_store_contract.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from pam_twofa.errors import INTERNAL, UNAVAILABLE, TwofaError

from .. import lockout, totp


class StoreError(TwofaError):
    """The database cannot be used: newer than this program, or not a twofad database."""

    def __init__(self, message: str) -> None:
        super().__init__(INTERNAL, message)


class StoreUnavailable(StoreError):
    """The database cannot answer now: unreachable, gone mid-operation, or over its time bound.

    A commit cut off may or may not have taken effect; every write is conditional on
    the row as read, so doing the operation again from a fresh read is safe.  The next
    transaction reconnects by itself.  The daemon answers `unavailable`, and
    the PAM hook applies its fail= choice: the store being away is a decision, not a hang.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = UNAVAILABLE  # ours, and the hook's fail= choice: not an internal error


class Conflict(Exception):
    """A compare-and-set lost to a concurrent change; the operation should be retried."""


@dataclass(frozen=True)
class UserRow:
    """One account as read: compare-and-set writes are conditional on its `version`."""

    name: str
    version: int
    created_at: float
    secret: bytes | None
    algorithm: str | None
    digits: int | None
    period: int | None
    enrolled_at: float | None
    pending_secret: bytes | None
    pending_algorithm: str | None
    pending_digits: int | None
    pending_period: int | None
    pending_since: float | None
    last_step: int | None
    drift: int
    failures: int
    locked_until: float | None
    hard_locked: int
    last_success: float | None
    last_failure: float | None
    totp_window: int | None
    strikes: int
    recent_failures: str | None  # lockout.encode_recent's text; None when there are none
    last_host: str | None = None  # where the last code was accepted (a fleet's host)

    @property
    def active(self) -> bool:
        return self.secret is not None

    @property
    def params(self) -> totp.TotpParams:
        """How the active key's codes are made."""
        return totp.TotpParams(self.algorithm or "SHA1", self.digits or 6, self.period or 30)

    @property
    def pending_params(self) -> totp.TotpParams:
        """How the codes of a key being set up are made."""
        return totp.TotpParams(
            self.pending_algorithm or "SHA1", self.pending_digits or 6, self.pending_period or 30
        )

    @property
    def lock(self) -> lockout.LockState:
        """The account's lock-out state: the one place it is read from the columns."""
        return lockout.LockState(
            self.failures,
            self.locked_until,
            bool(self.hard_locked),
            self.strikes,
            lockout.decode_recent(self.recent_failures),
        )


@dataclass(frozen=True)
class RecoveryRow:
    id: int
    digest: bytes
    used_at: float | None


@dataclass(frozen=True)
class SealedSecret:
    """A TOTP key as stored: sealed by the key ring, with how its codes are made."""

    sealed: bytes
    params: totp.TotpParams


class Backend(Protocol):
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

    # --- the named writes: each conditional on `row` (or on no row: None) -------------

    def begin_pending(
        self, name: str, row: UserRow | None, secret: SealedSecret, now: float
    ) -> None:
        """A new key to confirm, in place of any pending one; an active key stays.

        With `row` None the account must have no row yet (a new one is made).
        """
        ...

    def activate_pending(
        self, row: UserRow, step: int, now: float, recovery_digests: Sequence[bytes]
    ) -> None:
        """The pending key becomes the active one, confirmed by a code of time step `step`.

        `step` is spent; the drift, a key's own window and both lock-out counts start
        afresh, and the recovery codes are replaced by `recovery_digests`.  A Conflict
        too if `row` has no pending key.
        """
        ...

    def take_over(
        self,
        name: str,
        row: UserRow | None,
        secret: SealedSecret,
        now: float,
        *,
        last_step: int | None,
        window: int | None,
        recovery_digests: Sequence[bytes],
    ) -> None:
        """A key brought from elsewhere, active at once, in place of any key and set-up.

        `last_step` is the last time step already used, `window` the key's own
        tolerance (None: the policy's); the lock-out counts start afresh and the
        recovery codes are replaced.  With `row` None the account must have no row yet.
        """
        ...

    def record_success(
        self,
        row: UserRow,
        lock: lockout.LockState,
        now: float,
        *,
        step: int | None = None,
        drift: int | None = None,
        host: str | None = None,
    ) -> None:
        """A code accepted: the lock-out state after it, and the time step it spent.

        `step` None (a recovery code) leaves the last step used as it is; `drift`
        None leaves the drift.  `host` is where it was accepted.
        """
        ...

    def record_failure(self, row: UserRow, lock: lockout.LockState, now: float) -> None:
        """A code refused: the lock-out state after it."""
        ...

    def clear_lock(self, row: UserRow) -> None:
        """Both lock-out counts and any lock lifted (an administrator's unlock)."""
        ...

    def reseal(self, row: UserRow, secret: bytes | None, pending_secret: bytes | None) -> None:
        """The same keys, sealed again (under the ring's current key); nothing else changes."""
        ...

    def replace_recovery_codes(self, row: UserRow, digests: Sequence[bytes], now: float) -> None:
        """The user's recovery codes, all replaced by `digests`."""
        ...

    def spend_recovery_code(self, code_id: int, now: float) -> None:
        """Mark a code used; a Conflict if it was used meanwhile."""
        ...

    def delete_user(self, row: UserRow) -> None:
        """The account's row and its recovery codes removed."""
        ...
