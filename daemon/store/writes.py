"""The named writes, once for every backend: what each one changes, in columns.

A backend supplies three statements (a new row, a row changed only if its `version` is
still the one read, the user's recovery codes replaced) and inherits the writes, so
"a success spends its step" or "a new key starts both counts afresh" means the same in
SQLite and in PostgreSQL.  Column names here are constants of this module, never input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Protocol

from .. import lockout
from .rows import Brought, SealedSecret, UserRow

USER_COLUMNS = tuple(f.name for f in fields(UserRow))
SELECT_USER = f"SELECT {', '.join(USER_COLUMNS)} FROM users"  # noqa: S608 (constant columns)


def lock_columns(state: lockout.LockState) -> dict[str, Any]:
    """A lock state as the users table holds it: the inverse of ``UserRow.lock``."""
    return {
        "failures": state.failures,
        "strikes": state.strikes,
        "recent_failures": lockout.encode_recent(state.recent),
        "locked_until": state.locked_until,
        "hard_locked": int(state.hard_locked),
    }


# A new key (or an administrator's unlock) starts both counts afresh: guesses at an
# old key tell nothing about the new one.
CLEAR_LOCK = lock_columns(lockout.LockState(0, None, False))
NO_PENDING = {
    "pending_secret": None,
    "pending_algorithm": None,
    "pending_digits": None,
    "pending_period": None,
    "pending_since": None,
}


# The key being set up becomes the active one (an UPDATE's assignments all read the
# row as it was, so the pending columns can be cleared in the same statement).
PENDING_TO_ACTIVE = (
    "secret = pending_secret, algorithm = pending_algorithm, "
    "digits = pending_digits, period = pending_period, "
)


def pending(secret: SealedSecret, now: float) -> dict[str, Any]:
    return {
        "pending_secret": secret.sealed,
        "pending_algorithm": secret.params.algorithm,
        "pending_digits": secret.params.digits,
        "pending_period": secret.params.period,
        "pending_since": now,
    }


def conditional_update(changes: dict[str, Any], also: str, only_if: str, mark: str) -> str:
    """The UPDATE of `changes` that applies only to the row as it was read (its name and
    version are the last two parameters); `mark` is the driver's placeholder."""
    assignments = also + "".join(f"{column} = {mark}, " for column in changes)
    condition = f" AND {only_if}" if only_if else ""
    return (
        f"UPDATE users SET {assignments}version = version + 1 "  # noqa: S608 (own columns)
        f"WHERE name = {mark} AND version = {mark}{condition}"
    )


class NamedWrites(Protocol):
    """The interface's named writes, in terms of a backend's three conditional statements."""

    def _insert(self, name: str, now: float, values: dict[str, Any]) -> None:
        """A new account row; a Conflict if one exists (made meanwhile)."""
        ...

    def _update(
        self, row: UserRow, changes: dict[str, Any], *, also: str = "", only_if: str = ""
    ) -> None:
        """Write `changes` and move the version on, only if nobody changed the row since
        `row` was read; a Conflict, changing nothing, otherwise.

        With no changes it only claims the row: a write to rows that hang off it, such
        as the recovery codes, then conflicts with any other writer of that user.
        `also` and `only_if` are this package's own SQL: more assignments (which see
        the row as it was), and a further condition.
        """
        ...

    def _replace_codes(self, user: str, digests: Sequence[bytes], now: float) -> None:
        """The user's recovery codes, all replaced (the user's row claimed before)."""
        ...

    def begin_pending(
        self, name: str, row: UserRow | None, secret: SealedSecret, now: float
    ) -> None:
        """A new key to confirm, in place of any pending one; an active key stays.

        With `row` None the account must have no row yet (a new one is made).
        """
        if row is None:
            self._insert(name, now, pending(secret, now))
        else:
            self._update(row, pending(secret, now))

    def activate_pending(
        self, row: UserRow, step: int, now: float, recovery_digests: Sequence[bytes]
    ) -> None:
        """The pending key becomes the active one, confirmed by a code of time step `step`.

        `step` is spent; the drift, a key's own window and both lock-out counts start
        afresh, and the recovery codes are replaced by `recovery_digests`.  A Conflict
        too if `row` has no pending key.
        """
        changes = {
            **NO_PENDING,
            **CLEAR_LOCK,
            "enrolled_at": now,
            "last_step": step,
            "drift": 0,
            "totp_window": None,  # a new key follows the policy, whatever the old one kept
        }
        self._update(row, changes, also=PENDING_TO_ACTIVE, only_if="pending_secret IS NOT NULL")
        self._replace_codes(row.name, recovery_digests, now)

    def take_over(self, name: str, row: UserRow | None, brought: Brought, now: float) -> None:
        """A key brought from elsewhere, active at once, in place of any key and set-up.

        The lock-out counts start afresh and the recovery codes are replaced by the
        brought ones.  With `row` None the account must have no row yet.
        """
        active = {
            "secret": brought.secret.sealed,
            "algorithm": brought.secret.params.algorithm,
            "digits": brought.secret.params.digits,
            "period": brought.secret.params.period,
            **NO_PENDING,
            **CLEAR_LOCK,
            "enrolled_at": now,
            "last_step": brought.last_step,
            "drift": 0,
            "totp_window": brought.window,
        }
        if row is None:
            self._insert(name, now, active)
        else:
            self._update(row, active)
        self._replace_codes(name, brought.recovery_digests, now)

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
        changes = {**lock_columns(lock), "last_success": now, "last_host": host}
        if step is not None:
            changes["last_step"] = step
        if drift is not None:
            changes["drift"] = drift
        self._update(row, changes)

    def record_failure(self, row: UserRow, lock: lockout.LockState, now: float) -> None:
        """A code refused: the lock-out state after it."""
        self._update(row, {**lock_columns(lock), "last_failure": now})

    def clear_lock(self, row: UserRow) -> None:
        """Both lock-out counts and any lock lifted (an administrator's unlock)."""
        self._update(row, CLEAR_LOCK)

    def reseal(self, row: UserRow, secret: bytes | None, pending_secret: bytes | None) -> None:
        """The same keys, sealed again (under the ring's current key); nothing else changes."""
        self._update(row, {"secret": secret, "pending_secret": pending_secret})

    def replace_recovery_codes(self, row: UserRow, digests: Sequence[bytes], now: float) -> None:
        """The user's recovery codes, all replaced by `digests`."""
        # Claimed first, so two renewals racing (two hosts, one store) cannot
        # interleave their deletes and inserts: the later one starts over.
        self._update(row, {})
        self._replace_codes(row.name, digests, now)
