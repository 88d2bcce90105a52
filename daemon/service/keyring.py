"""Re-sealing every secret under the ring's current key, so an older key can be retired.

A page of accounts at a time (the command follows the pages), each account in a
transaction of its own and conditional on its row as read: logins go on throughout,
and an account changed meanwhile is simply read again.  What cannot be re-sealed is
reported, never guessed at: a secret sealed with a key this host's ring lacks, and
recovery codes, whose digests cannot be made again without the codes themselves (they
keep working while their key is in the ring; new ones are made under the current key).
Once the last page is done, the database's fingerprint becomes the current key's, so a
host still without it refuses to start.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import impact
from ..keys import KeyFileError
from .context import Context

PAGE = 50  # accounts re-sealed per request: a page takes milliseconds, not seconds
RESEALED, UNCHANGED, UNREADABLE = "resealed", "unchanged", "unreadable"


def reseal(ctx: Context, after: str | None = None, limit: int = PAGE) -> dict[str, Any]:
    page, following = impact.page(
        ctx.store.user_names(), after, min(limit, PAGE), functools.partial(_account, ctx)
    )
    unreadable = [name for name, outcome, _ in page if outcome == UNREADABLE]
    if following is None and not unreadable:
        ctx.atomic(lambda now: ctx.store.set_meta("key_fingerprint", ctx.keys.fingerprint))
    return {
        "key": ctx.keys.current.name,
        "ring": [key.name for key in ctx.keys.all],
        "accounts": len(page),
        "resealed": sum(outcome == RESEALED for _, outcome, _ in page),
        "unreadable": unreadable,
        "recovery_codes_under_older_keys": [name for name, _, older in page if older],
        "next": following,
    }


def _account(ctx: Context, name: str) -> tuple[str, str, bool]:
    """One account: its keys sealed again (or why not), and whether its recovery codes
    still need an older key."""
    try:
        outcome = RESEALED if ctx.atomic(functools.partial(_reseal_one, ctx, name)) else UNCHANGED
    except KeyFileError:
        outcome = UNREADABLE
    return name, outcome, ctx.atomic(functools.partial(_codes_under_older_keys, ctx, name))


def _reseal_one(ctx: Context, name: str, now: float) -> int:
    row = ctx.store.get_user(name)
    if row is None:
        return 0
    sealed = {
        device.name: ctx.keys.seal(name, ctx.keys.unseal(name, device.secret))
        for device in row.devices
        if not ctx.keys.sealed_with_current(device.secret)
    }
    if not sealed:
        return 0
    ctx.store.reseal(row, sealed)
    return 1


def _codes_under_older_keys(ctx: Context, name: str, now: float) -> bool:
    return any(
        code.used_at is None and not ctx.keys.hashed_with_current(code.digest)
        for code in ctx.store.recovery_codes(name)
    )
