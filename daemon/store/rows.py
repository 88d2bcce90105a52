"""What a store holds and says, apart from how: the rows as read, and its errors.

Both the interface (interface.py) and the named writes (writes.py) speak of these, so
they live apart from either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Brought:
    """A key brought from elsewhere (an import, another store), with what its old home
    knew of it."""

    secret: SealedSecret
    last_step: int | None = None  # the last time step already used there
    window: int | None = None  # the key's own tolerance; None: the policy's
    recovery_digests: Sequence[bytes] = ()
