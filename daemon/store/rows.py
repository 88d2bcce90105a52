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
class DeviceRow:
    """One of an account's devices: its own key, how its codes are made, its own steps.

    Pending until a code from it confirms it (`confirmed_at`).  A pending device that
    `renews` replaces every other device of the account once confirmed: a new start
    after a key may have leaked, with the old devices working until then.
    """

    name: str
    secret: bytes
    algorithm: str
    digits: int
    period: int
    added_at: float
    confirmed_at: float | None
    last_step: int | None  # the last time step accepted from this device
    drift: int  # steps its clock is off, as a resync measured
    totp_window: int | None  # its own tolerance (an imported key's); None: the policy's
    last_used: float | None
    renews: bool

    @property
    def active(self) -> bool:
        return self.confirmed_at is not None

    @property
    def params(self) -> totp.TotpParams:
        return totp.TotpParams(self.algorithm, self.digits, self.period)


@dataclass(frozen=True)
class UserRow:
    """One account as read, with its devices: every write is conditional on `version`.

    The account's own columns hold what is per person (the lock-out, the recovery
    codes' owner, the last login); its devices hang off it.  Every write to a device
    also moves the account's version on, so one version orders all of an account's
    changes, devices included.
    """

    name: str
    version: int
    created_at: float
    enrolled_at: float | None
    failures: int
    locked_until: float | None
    hard_locked: int
    last_success: float | None
    last_failure: float | None
    strikes: int
    recent_failures: str | None  # lockout.encode_recent's text; None when there are none
    last_host: str | None  # where the last code was accepted (a fleet's host)
    email: str | None = None  # the address codes are mailed to, once proven
    email_pending: str | None = None  # an address being proven with a mailed code
    email_pending_digest: bytes | None = None  # that code's keyed hash
    email_pending_expires: float | None = None
    email_code_digest: bytes | None = None  # the login code mailed last, as a keyed hash
    email_code_expires: float | None = None
    email_sends: str | None = None  # when codes were mailed (emailing.encode_sends)
    devices: tuple[DeviceRow, ...] = ()  # in the order they were added

    @property
    def active_devices(self) -> tuple[DeviceRow, ...]:
        return tuple(d for d in self.devices if d.active)

    @property
    def pending_devices(self) -> tuple[DeviceRow, ...]:
        return tuple(d for d in self.devices if not d.active)

    @property
    def active(self) -> bool:
        """Two-step verification is on: a confirmed device can log in."""
        return any(d.active for d in self.devices)

    def device(self, name: str) -> DeviceRow | None:
        """The device called `name`, in any case: one account cannot hold "Phone" and "phone"."""
        wanted = name.casefold()
        return next((d for d in self.devices if d.name.casefold() == wanted), None)

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
class BroughtDevice:
    """A device's key brought from elsewhere (an import, another store), with what its
    old home knew of it."""

    name: str
    secret: SealedSecret
    last_step: int | None = None  # the last time step already used there
    window: int | None = None  # the key's own tolerance; None: the policy's
    active: bool = True  # False: a set-up still waiting for its first code
    last_used: float | None = None
    drift: int = 0


@dataclass(frozen=True)
class Brought:
    """An account's devices brought from elsewhere, and its recovery codes' digests."""

    devices: Sequence[BroughtDevice]
    recovery_digests: Sequence[bytes] = ()
    email: str | None = None  # a proven address for codes by email; None keeps the account's
