"""Moving a host's own state into the fleet's store: `twofad --move-to URL`.

Each account of the host's SQLite file is written into the shared store as it is: each
of its devices' keys (opened with this host's ring, sealed again with the ring's current
key, which is the fleet's), with the last time step it used (so a code used on this
host is not accepted again anywhere), its own tolerance and drift, and a device being
set up; and its recovery codes' digests.  An account the store already has is never
overwritten: with the same keys it is reported as already there; with other keys it is
left alone and reported, since which of the apps the person uses is theirs to say.
Each account is one transaction of the target store, so a move cut short is run again
safely.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from .keys import KeyFileError, Keys
from .store import Backend, Brought, BroughtDevice, Conflict, DeviceRow, SealedSecret, UserRow

MOVED = "moved"
ALREADY_THERE = "already there"
LEFT_ALONE = "left alone: the store has another key for this account"
UNREADABLE = "not moved: this host's key ring cannot open its key"


@dataclass
class Report:
    """What became of each account, and which recovery codes need an older key."""

    results: dict[str, str] = field(default_factory=dict)
    codes_under_older_keys: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accounts": [{"user": user, "result": r} for user, r in self.results.items()],
            "recovery_codes_under_older_keys": self.codes_under_older_keys,
        }


def move(source: Backend, target: Backend, keys: Keys, now: float) -> Report:
    report = Report()
    with source.transaction():
        rows = source.list_users()
        codes = {row.name: source.recovery_codes(row.name) for row in rows}
    for row in rows:
        digests = [code.digest for code in codes[row.name] if code.used_at is None]
        try:
            report.results[row.name] = _move_one(target, keys, row, digests, now)
        except KeyFileError:
            report.results[row.name] = UNREADABLE
            continue
        if report.results[row.name] == MOVED and any(
            not keys.hashed_with_current(digest) for digest in digests
        ):
            report.codes_under_older_keys.append(row.name)
    return report


def _move_one(target: Backend, keys: Keys, row: UserRow, digests: list[bytes], now: float) -> str:
    for _ in range(8):  # another host writing the same account meanwhile: read again
        try:
            with target.transaction():
                return _write(target, keys, row, digests, now)
        except Conflict:
            continue
    raise Conflict(f"{row.name}: changed on every attempt")


def _write(target: Backend, keys: Keys, row: UserRow, digests: list[bytes], now: float) -> str:
    there = target.get_user(row.name)
    if there is not None:
        return ALREADY_THERE if _same_keys(keys, row, there) else LEFT_ALONE
    if not row.devices:
        return ALREADY_THERE  # a row with no key at all: nothing to move
    brought = [_resealed(keys, row.name, device) for device in row.devices]
    target.take_over(row.name, None, Brought(brought, digests, row.email), now)
    return MOVED


def _resealed(keys: Keys, user: str, device: DeviceRow) -> BroughtDevice:
    """A device as the target store keeps it: sealed with the ring's current key."""
    sealed = SealedSecret(keys.seal(user, keys.unseal(user, device.secret)), device.params)
    return BroughtDevice(
        device.name,
        sealed,
        device.last_step,
        device.totp_window,
        active=device.active,
        last_used=device.last_used,
        drift=device.drift,
    )


def _same_keys(keys: Keys, row: UserRow, there: UserRow) -> bool:
    """Whether the store's account has exactly this host's active keys."""
    try:
        mine = sorted(keys.unseal(row.name, d.secret) for d in row.active_devices)
        theirs = sorted(keys.unseal(row.name, d.secret) for d in there.active_devices)
    except KeyFileError:
        return False
    return len(mine) == len(theirs) and all(
        hmac.compare_digest(a.encode(), b.encode()) for a, b in zip(mine, theirs, strict=True)
    )
