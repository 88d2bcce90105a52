"""Moving a host's own state into the fleet's store: `twofad --move-to URL`.

Each account of the host's SQLite file is written into the shared store as it is: its
key (opened with this host's ring, sealed again with the ring's current key, which is
the fleet's), the last time step it used (so a code used on this host is not accepted
again anywhere), its own tolerance, its recovery codes' digests, and a key being set
up.  An account the store already has is never overwritten: with the same key it is
reported as already there; with another key it is left alone and reported, since
which of the two apps the person uses is theirs to say.  Each account is one
transaction of the target store, so a move cut short is run again safely.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from .keys import KeyFileError, Keys
from .store import Backend, Brought, Conflict, SealedSecret, UserRow

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
        return ALREADY_THERE if _same_key(keys, row, there) else LEFT_ALONE
    if row.secret is not None:
        sealed = SealedSecret(keys.seal(row.name, keys.unseal(row.name, row.secret)), row.params)
        brought = Brought(sealed, row.last_step, row.totp_window, digests)
        target.take_over(row.name, None, brought, now)
        if row.pending_secret is not None:  # a new key being set up goes along too
            pending = keys.seal(row.name, keys.unseal(row.name, row.pending_secret))
            moved = target.get_user(row.name)
            assert moved is not None
            target.begin_pending(row.name, moved, SealedSecret(pending, row.pending_params), now)
    elif row.pending_secret is not None:
        pending = keys.seal(row.name, keys.unseal(row.name, row.pending_secret))
        target.begin_pending(row.name, None, SealedSecret(pending, row.pending_params), now)
    else:
        return ALREADY_THERE  # a row with no key at all: nothing to move
    return MOVED


def _same_key(keys: Keys, row: UserRow, there: UserRow) -> bool:
    if row.secret is None or there.secret is None:
        return row.secret is None and there.secret is None
    try:
        mine, theirs = keys.unseal(row.name, row.secret), keys.unseal(row.name, there.secret)
    except KeyFileError:
        return False
    return hmac.compare_digest(mine.encode(), theirs.encode())
