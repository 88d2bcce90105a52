"""The PAM hook's questions: should this login be asked for a code, and is this code good.

Also `resync`, which centres an account's window on a phone whose clock has drifted:
it accepts codes as a login does and counts failures as a login does.  The rules
themselves live elsewhere, one module each: which codes match and which time steps may
still be used in `totp`, the check-and-spend of a recovery code in `recovery`, the
back-off in `lockout`.  Here they are applied to one account's row, and every change to
it is a conditional write, so the rules also hold when two logins race.
"""

from __future__ import annotations

from typing import Any

from pam_twofa import protocol as p

from .. import lockout, recovery, totp
from ..policy import EXEMPT, OPTIONAL
from ..store import UserRow
from .context import COMMAND_ORIGIN, Context
from .replies import failed_reply, locked_reply


def check(
    ctx: Context, user: str, service: str | None = None, rhost: str | None = None
) -> dict[str, Any]:
    """What the hook should do with this login, as the policy decides it.

    skip (exempt, or optional and not set up), prompt, locked, enroll (required and
    not set up, with set-up at login) or refuse.  An unknown user is prompted like
    an enrolled one, so the prompt reveals nothing about which accounts exist.
    """
    decision = ctx.policy.decide(user, lambda: ctx.directory.groups_of(user), service, rhost)
    if decision.action == EXEMPT:
        return {"action": p.SKIP}
    with ctx.store.transaction():
        row = ctx.store.get_user(user)
    if row is not None and row.active:
        locked = locked_reply(row.lock, ctx.clock())
        if locked is not None:
            return {"action": p.LOCKED, **locked}
        return {"action": p.PROMPT, "digits": row.digits}
    if ctx.directory.uid_of(user) is None:
        locked = locked_reply(ctx.decoys.lock(user), ctx.clock())
        if locked is not None:
            return {"action": p.LOCKED, **locked}
        return {"action": p.PROMPT, "digits": ctx.policy.totp.digits}
    if decision.action == OPTIONAL:
        return {"action": p.SKIP}
    return {"action": p.ENROLL if ctx.policy.enrollment_at_login else p.REFUSE}


def verify(
    ctx: Context, user: str, code: str, service: str | None = None, rhost: str | None = None
) -> dict[str, Any]:
    """Accept a TOTP or recovery code at most once; count and lock out failures.

    `service` and `rhost` are where the attempt comes from: a success forgives only
    failures from the same place (see lockout).
    """
    origin = lockout.origin_of(service, rhost)
    return ctx.atomic(lambda now: verify_now(ctx, user, code, now, origin))


def verify_now(ctx: Context, user: str, code: str, now: float, origin: str) -> dict[str, Any]:
    """`verify` inside a transaction already open, at `now`: also the proof of a command."""
    row = ctx.store.get_user(user)
    if row is None or not row.active:
        if row is None and ctx.directory.uid_of(user) is None:
            return ctx.decoys.verify(ctx.policy, user, code, now, origin)
        return {"result": p.NOT_ENROLLED}
    locked = locked_reply(row.lock, now)
    if locked is not None:
        return locked
    typed = totp.normalize(code)
    if totp.is_totp_shaped(typed, row.params):
        return _verify_totp(ctx, row, typed, now, origin)
    return _verify_recovery(ctx, row, code, now, origin)


def _window(ctx: Context, row: UserRow, now: float) -> tuple[int, int]:
    """The steps a login may match: the policy's window (or the key's own) around now,
    moved by the drift a resync measured."""
    center = totp.time_step(now, row.params.period) + row.drift
    width = ctx.policy.window if row.totp_window is None else row.totp_window
    return center - width, center + width


def _verify_totp(ctx: Context, row: UserRow, typed: str, now: float, origin: str) -> dict[str, Any]:
    secret = ctx.keys.unseal(row.name, row.secret or b"")
    matches = totp.matching_steps(secret, row.params, typed, *_window(ctx, row, now))
    fresh = totp.fresh_steps(matches, row.last_step)
    if fresh:
        _record_success(ctx, row, now, origin, step=max(fresh))
        return {"result": p.ACCEPTED, "method": "totp"}
    return _record_failure(ctx, row, now, origin, p.REPLAYED if matches else p.REJECTED)


def _verify_recovery(
    ctx: Context, row: UserRow, code: str, now: float, origin: str
) -> dict[str, Any]:
    outcome = recovery.redeem(ctx.store, ctx.keys, row.name, code, now)
    if outcome == recovery.UNKNOWN:
        return _record_failure(ctx, row, now, origin, p.REJECTED)
    if outcome == recovery.USED:
        return _record_failure(ctx, row, now, origin, p.REPLAYED)
    _record_success(ctx, row, now, origin)
    return {
        "result": p.ACCEPTED,
        "method": "recovery",
        "recovery_codes_left": ctx.store.unused_recovery_count(row.name),
    }


def resync(ctx: Context, user: str, code1: str, code2: str) -> dict[str, Any]:
    """Find two consecutive codes within ±10 minutes and centre the window on them."""
    return ctx.atomic(lambda now: _resync(ctx, user, code1, code2, now))


def _resync(ctx: Context, user: str, code1: str, code2: str, now: float) -> dict[str, Any]:
    row = ctx.active_row(user)
    locked = locked_reply(row.lock, now)
    if locked is not None:
        return locked
    params = row.params
    secret = ctx.keys.unseal(user, row.secret or b"")
    first, second = totp.normalize(code1), totp.normalize(code2)
    if not (totp.is_totp_shaped(first, params) and totp.is_totp_shaped(second, params)):
        return _record_failure(ctx, row, now, COMMAND_ORIGIN, p.REJECTED)
    step = totp.time_step(now, params.period)
    reach = totp.resync_steps(params.period)
    low, high = step - reach, step + reach
    # Both steps of the pair must still be unused; the second follows the first.
    firsts = set(
        totp.fresh_steps(totp.matching_steps(secret, params, first, low, high), row.last_step)
    )
    seconds = totp.matching_steps(secret, params, second, low, high)
    pairs = [s for s in seconds if s - 1 in firsts]
    if not pairs:
        return _record_failure(ctx, row, now, COMMAND_ORIGIN, p.REJECTED)
    latest = max(pairs)
    _record_success(ctx, row, now, COMMAND_ORIGIN, step=latest, drift=latest - step)
    return {"result": p.ACCEPTED, "drift": latest - step}


def _record_success(
    ctx: Context,
    row: UserRow,
    now: float,
    origin: str,
    *,
    step: int | None = None,
    drift: int | None = None,
) -> None:
    """The back-off ends; the lifetime count keeps what this success does not forgive."""
    state = lockout.after_success(ctx.policy.lockout, row.lock, now, origin)
    ctx.store.record_success(row, state, now, step=step, drift=drift, host=ctx.host)


def _record_failure(
    ctx: Context, row: UserRow, now: float, origin: str, result: str
) -> dict[str, Any]:
    state = lockout.after_failure(ctx.policy.lockout, row.lock, now, origin)
    ctx.store.record_failure(row, state, now)
    return failed_reply(result, state, now)
