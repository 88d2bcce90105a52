"""The named writes, once for every backend: what each one changes, in columns.

A backend supplies four statements (a new account row, an account row changed only if
its `version` is still the one read, the user's recovery codes replaced, and any
statement on the devices table with its count of rows changed) and inherits the writes,
so "a success spends its device's step" or "a new key starts both counts afresh" means
the same in SQLite and in PostgreSQL.  Every write to a device first claims its
account's row (moves its version on), so two writes to one account, whichever devices
they touch, never both succeed from the same read.  Column names here are constants of
this module, never input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any, Protocol

from .. import lockout
from .rows import Brought, BroughtDevice, Conflict, DeviceRow, SealedSecret, UserRow

USER_COLUMNS = tuple(f.name for f in fields(UserRow) if f.name != "devices")
DEVICE_COLUMNS = tuple(f.name for f in fields(DeviceRow))
SELECT_USER = f"SELECT {', '.join(USER_COLUMNS)} FROM users"  # noqa: S608 (constant columns)
SELECT_DEVICE = f"SELECT owner, {', '.join(DEVICE_COLUMNS)} FROM devices"  # noqa: S608
DEVICE_ORDER = "ORDER BY added_at, name"


def device_of(values: Sequence[Any]) -> DeviceRow:
    """A device row as read (without its owner): the flag made a bool, the key bytes."""
    row = DeviceRow(*values)
    return replace(row, secret=bytes(row.secret), renews=bool(row.renews))


def user_of(values: Sequence[Any], devices: Sequence[DeviceRow]) -> UserRow:
    row = UserRow(*values)
    return replace(
        row,
        email_pending_digest=_bytes_or_none(row.email_pending_digest),
        email_code_digest=_bytes_or_none(row.email_code_digest),
        devices=tuple(devices),
    )


def _bytes_or_none(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


# No code mailed for a login, or none any more (spent, replaced, or its address gone).
NO_EMAIL_CODE = {"email_code_digest": None, "email_code_expires": None}
NO_PENDING_EMAIL = {
    "email_pending": None,
    "email_pending_digest": None,
    "email_pending_expires": None,
}


def lock_columns(state: lockout.LockState) -> dict[str, Any]:
    """A lock state as the users table holds it: the inverse of ``UserRow.lock``."""
    return {
        "failures": state.failures,
        "strikes": state.strikes,
        "recent_failures": lockout.encode_recent(state.recent),
        "locked_until": state.locked_until,
        "hard_locked": int(state.hard_locked),
    }


# A new start (a first key, a renewal, an import, an administrator's unlock) clears both
# counts: guesses at an old key tell nothing about the new one.
CLEAR_LOCK = lock_columns(lockout.LockState(0, None, False))


def conditional_update(changes: dict[str, Any], also: str, only_if: str, mark: str) -> str:
    """The UPDATE of `changes` that applies only to the row as it was read (its name and
    version are the last two parameters); `mark` is the driver's placeholder."""
    assignments = also + "".join(f"{column} = {mark}, " for column in changes)
    condition = f" AND {only_if}" if only_if else ""
    return (
        f"UPDATE users SET {assignments}version = version + 1 "  # noqa: S608 (own columns)
        f"WHERE name = {mark} AND version = {mark}{condition}"
    )


def new_device(
    name: str, secret: SealedSecret, now: float, *, active: bool, renews: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "secret": secret.sealed,
        "algorithm": secret.params.algorithm,
        "digits": secret.params.digits,
        "period": secret.params.period,
        "added_at": now,
        "confirmed_at": now if active else None,
        "last_step": None,
        "drift": 0,
        "totp_window": None,
        "last_used": None,
        "renews": int(renews),
    }


def brought_device(device: BroughtDevice, now: float) -> dict[str, Any]:
    return {
        **new_device(device.name, device.secret, now, active=device.active),
        "last_step": device.last_step,
        "drift": device.drift,
        "totp_window": device.window,
        "last_used": device.last_used,
    }


class NamedWrites(Protocol):
    """The interface's named writes, in terms of a backend's conditional statements."""

    MARK: str  # the driver's placeholder for a parameter: "?" or "%s"

    def _insert(self, name: str, now: float, values: dict[str, Any]) -> None:
        """A new account row; a Conflict if one exists (made meanwhile)."""
        ...

    def _update(
        self, row: UserRow, changes: dict[str, Any], *, also: str = "", only_if: str = ""
    ) -> None:
        """Write `changes` and move the version on, only if nobody changed the row since
        `row` was read; a Conflict, changing nothing, otherwise.

        With no changes it only claims the row: a write to rows that hang off it (the
        devices, the recovery codes) then conflicts with any other writer of that user.
        `also` and `only_if` are this package's own SQL: more assignments (which see
        the row as it was), and a further condition.
        """
        ...

    def _replace_codes(self, user: str, digests: Sequence[bytes], now: float) -> None:
        """The user's recovery codes, all replaced (the user's row claimed before)."""
        ...

    def _changed(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement of this module's on the devices table; the rows it changed."""
        ...

    # --- the devices table, in this module's own statements -----------------------------

    def _add_device(self, owner: str, values: dict[str, Any]) -> None:
        columns = {"owner": owner, **values}
        marks = ", ".join([self.MARK] * len(columns))
        self._changed(
            f"INSERT INTO devices ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            tuple(columns.values()),
        )

    def _change_device(
        self, owner: str, name: str, changes: dict[str, Any], *, only_if: str = ""
    ) -> None:
        """Change one device; a Conflict if it is not there (or not as `only_if` says)."""
        m = self.MARK
        assignments = ", ".join(f"{column} = {m}" for column in changes)
        condition = f" AND {only_if}" if only_if else ""
        count = self._changed(
            f"UPDATE devices SET {assignments} "  # noqa: S608 (own columns)
            f"WHERE owner = {m} AND name = {m}{condition}",
            (*changes.values(), owner, name),
        )
        if count != 1:
            raise Conflict(f"device {name!r} of {owner!r} changed concurrently")

    def _drop_devices(self, owner: str, *, only: str | None = None, but: str | None = None) -> int:
        """Remove the device `only`, or every device but `but`, or all of them."""
        m = self.MARK
        params: tuple[str, ...] = (owner,)
        sql = f"DELETE FROM devices WHERE owner = {m}"  # noqa: S608 (the driver's mark only)
        if only is not None:
            sql, params = f"{sql} AND name = {m}", (owner, only)
        elif but is not None:
            sql, params = f"{sql} AND name <> {m}", (owner, but)
        return self._changed(sql, params)

    # --- the named writes -------------------------------------------------------------

    def begin_device(
        self,
        name: str,
        row: UserRow | None,
        device: str,
        secret: SealedSecret,
        now: float,
        *,
        renews: bool = False,
    ) -> None:
        """A new device called `device`, to confirm with a code from it; the active
        devices stay as they are.

        It takes the place of a pending device of the same name (in any case), of any
        set-up of an account not yet active (one first device at a time), and, if it
        `renews` (replaces all the others once confirmed), of any earlier renewal.
        With `row` None the account must have no row yet (a new one is made).
        """
        if row is None:
            self._insert(name, now, {})
        else:
            self._update(row, {})
            wanted = device.casefold()
            for old in row.pending_devices:
                if old.name.casefold() == wanted or not row.active or (renews and old.renews):
                    self._drop_devices(name, only=old.name)
        self._add_device(name, new_device(device, secret, now, active=False, renews=renews))

    def activate_device(
        self,
        row: UserRow,
        device: DeviceRow,
        step: int,
        now: float,
        digests: Sequence[bytes] | None,
    ) -> None:
        """The pending `device` becomes active, confirmed by a code of time step `step`.

        `step` is spent.  A device that renews the account removes every other one.
        With `digests` (the account's first device, or a renewal) this is a new start:
        both lock-out counts clear and the recovery codes are replaced by them.  A
        Conflict if the device is no longer pending.
        """
        start = {**CLEAR_LOCK, "enrolled_at": now} if digests is not None else {}
        self._update(row, start)
        if device.renews:
            self._drop_devices(row.name, but=device.name)
        confirmed = {"confirmed_at": now, "last_step": step, "drift": 0, "renews": 0}
        self._change_device(row.name, device.name, confirmed, only_if="confirmed_at IS NULL")
        if digests is not None:
            self._replace_codes(row.name, digests, now)

    def take_over(self, name: str, row: UserRow | None, brought: Brought, now: float) -> None:
        """Devices brought from elsewhere, in place of every device the account had.

        The lock-out counts start afresh and the recovery codes are replaced by the
        brought ones; a brought address for codes by email becomes the account's (none
        brought keeps the account's own).  With `row` None the account must have no row
        yet.
        """
        start = {**CLEAR_LOCK, "enrolled_at": now}
        if brought.email is not None:
            start["email"] = brought.email
        if row is None:
            self._insert(name, now, start)
        else:
            self._update(row, start)
            self._drop_devices(name)
        for device in brought.devices:
            self._add_device(name, brought_device(device, now))
        self._replace_codes(name, brought.recovery_digests, now)

    def record_success(
        self,
        row: UserRow,
        lock: lockout.LockState,
        now: float,
        *,
        device: str | None = None,
        step: int | None = None,
        drift: int | None = None,
        host: str | None = None,
        emailed: bool = False,
    ) -> None:
        """A code accepted: the lock-out state after it, and what the device spent.

        `device` None (a recovery code, or with `emailed` the code mailed last, which
        is spent) touches no device.  Otherwise `step` is the time step it spent (None
        leaves its last step) and `drift` its clock's offset (None leaves it).  `host`
        is where it was accepted.
        """
        spent_mail = NO_EMAIL_CODE if emailed else {}
        changes = {**lock_columns(lock), "last_success": now, "last_host": host, **spent_mail}
        self._update(row, changes)
        if device is None:
            return
        spent: dict[str, Any] = {"last_used": now}
        if step is not None:
            spent["last_step"] = step
        if drift is not None:
            spent["drift"] = drift
        self._change_device(row.name, device, spent, only_if="confirmed_at IS NOT NULL")

    def record_failure(self, row: UserRow, lock: lockout.LockState, now: float) -> None:
        """A code refused: the lock-out state after it."""
        self._update(row, {**lock_columns(lock), "last_failure": now})

    def clear_lock(self, row: UserRow) -> None:
        """Both lock-out counts and any lock lifted (an administrator's unlock)."""
        self._update(row, CLEAR_LOCK)

    def rename_device(self, row: UserRow, old: str, new: str) -> None:
        """The device `old` (its stored name) called `new` from now on."""
        self._update(row, {})
        self._change_device(row.name, old, {"name": new})

    def remove_device(self, row: UserRow, device: str) -> None:
        """The device (its stored name) removed: its codes are refused from now on."""
        self._update(row, {})
        if self._drop_devices(row.name, only=device) != 1:
            raise Conflict(f"device {device!r} of {row.name!r} removed concurrently")

    def reseal(self, row: UserRow, sealed: dict[str, bytes]) -> None:
        """The same keys, sealed again (under the ring's current key), by device name."""
        self._update(row, {})
        for device, secret in sealed.items():
            self._change_device(row.name, device, {"secret": secret})

    # --- codes by email ------------------------------------------------------------------

    def begin_email_address(
        self, row: UserRow, address: str, digest: bytes, expires: float, sends: str
    ) -> None:
        """An address to prove: the keyed hash of the code mailed to it, and the send
        counted.  It takes the place of any address being proven before."""
        pending = {
            "email_pending": address,
            "email_pending_digest": digest,
            "email_pending_expires": expires,
        }
        self._update(row, {**pending, "email_sends": sends})

    def confirm_email_address(self, row: UserRow) -> None:
        """The address being proven becomes the account's; a login code mailed to the
        address before it goes."""
        self._update(
            row,
            {**NO_PENDING_EMAIL, **NO_EMAIL_CODE},
            also="email = email_pending, ",
            only_if="email_pending IS NOT NULL",
        )

    def set_email_address(self, row: UserRow, address: str | None) -> None:
        """The account's address set (an administrator's word) or removed; an address
        being proven and a login code mailed before go with the old one."""
        self._update(row, {"email": address, **NO_PENDING_EMAIL, **NO_EMAIL_CODE})

    def begin_email_code(self, row: UserRow, digest: bytes, expires: float, sends: str) -> None:
        """A login code mailed: its keyed hash in place of any code mailed before."""
        code = {"email_code_digest": digest, "email_code_expires": expires}
        self._update(row, {**code, "email_sends": sends})

    def withdraw_email(self, row: UserRow, sends: str | None, *, code: bool) -> None:
        """A message that could not be delivered, undone: its send no longer counts,
        and its code (a login code with `code`, else an address's) is dropped."""
        dropped = NO_EMAIL_CODE if code else NO_PENDING_EMAIL
        self._update(row, {**dropped, "email_sends": sends})

    def replace_recovery_codes(self, row: UserRow, digests: Sequence[bytes], now: float) -> None:
        """The user's recovery codes, all replaced by `digests`."""
        # Claimed first, so two renewals racing (two hosts, one store) cannot
        # interleave their deletes and inserts: the later one starts over.
        self._update(row, {})
        self._replace_codes(row.name, digests, now)
