"""The PAM hook's questions: should this login be asked for a code, and is this code good.

A code from any of the account's active devices is accepted, each device with its own
key, window and last step used.  Also `resync`, which centres a device's window on its
clock when it has drifted: it accepts codes as a login does and counts failures as a
login does.  The rules
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
from ..store import DeviceRow, UserRow
from .context import COMMAND_ORIGIN, Context
from .replies import failed_reply, locked_reply


def check(
    ctx: Context, user: str, service: str | None = None, rhost: str | None = None
) -> dict[str, Any]:
    """What the hook should do with this login, as the policy decides it.

    skip (exempt, or optional and not set up), prompt, locked, enroll (required and
    not set up, with set-up at login) or refuse.  An unknown user is prompted like
    an enrolled one, so the prompt reveals nothing about which accounts exist; `email`
    says whether the prompt offers a code by email, as the policy decides it for
    this login, for a name with an address or without.
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
        return {"action": p.PROMPT, "digits": _prompt_digits(row), "email": decision.email}
    if ctx.directory.uid_of(user) is None:
        locked = locked_reply(ctx.decoys.lock(user), ctx.clock())
        if locked is not None:
            return {"action": p.LOCKED, **locked}
        return {"action": p.PROMPT, "digits": ctx.policy.totp.digits, "email": decision.email}
    if decision.action == OPTIONAL:
        return {"action": p.SKIP}
    return {"action": p.ENROLL if ctx.policy.enrollment_at_login else p.REFUSE}


def _prompt_digits(row: UserRow) -> int | None:
    """The length of a code, where every device makes codes of one length: the hook
    reads a code typed after the password by it.  None where they differ (six is
    then the hook's guess)."""
    lengths = {device.digits for device in row.active_devices}
    return lengths.pop() if len(lengths) == 1 else None


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
    if not any(totp.is_totp_shaped(typed, device.params) for device in row.active_devices):
        return _verify_recovery(ctx, row, code, now, origin)
    matched = _match(ctx, row, typed, now)
    if isinstance(matched, tuple):
        device, step = matched
        _record_success(ctx, row, now, origin, device=device.name, step=step)
        return {"result": p.ACCEPTED, "method": "totp", "device": device.name}
    if not matched and recovery.normalize(code) is not None:
        # Eight digits may be an 8-digit device's code or an imported scratch code.
        return _verify_recovery(ctx, row, code, now, origin)
    return _record_failure(ctx, row, now, origin, p.REPLAYED if matched else p.REJECTED)


def _window(ctx: Context, device: DeviceRow, now: float) -> tuple[int, int]:
    """The steps a login may match: the policy's window (or the key's own) around now,
    moved by the drift a resync measured for this device."""
    center = totp.time_step(now, device.period) + device.drift
    width = ctx.policy.window if device.totp_window is None else device.totp_window
    return center - width, center + width


def _match(ctx: Context, row: UserRow, typed: str, now: float) -> tuple[DeviceRow, int] | bool:
    """The device a code is from and the step it spends, else whether it was a replay.

    Every candidate of every active device is computed and compared, so the time taken
    says nothing about which device (or whether one) matched.  A step counts once per
    device: the same step of another device is another code.
    """
    found: tuple[DeviceRow, int] | None = None
    replayed = False
    for device in row.active_devices:
        if not totp.is_totp_shaped(typed, device.params):
            continue
        secret = ctx.keys.unseal(row.name, device.secret)
        matches = totp.matching_steps(secret, device.params, typed, *_window(ctx, device, now))
        fresh = totp.fresh_steps(matches, device.last_step)
        if fresh and found is None:
            found = (device, max(fresh))
        replayed = replayed or bool(matches and not fresh)
    return found if found is not None else replayed


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
    first, second = totp.normalize(code1), totp.normalize(code2)
    pairs = [(device, _pair(ctx, row, device, first, second, now)) for device in row.active_devices]
    found = [(device, pair) for device, pair in pairs if pair is not None]
    if not found:
        return _record_failure(ctx, row, now, COMMAND_ORIGIN, p.REJECTED)
    device, (latest, drift) = found[0]
    _record_success(ctx, row, now, COMMAND_ORIGIN, device=device.name, step=latest, drift=drift)
    return {"result": p.ACCEPTED, "drift": drift, "device": device.name}


def _pair(
    ctx: Context, row: UserRow, device: DeviceRow, first: str, second: str, now: float
) -> tuple[int, int] | None:
    """The later step of two consecutive unused codes of `device` within ±10 minutes,
    and how far it lies from now; None if they are no such pair."""
    params = device.params
    if not (totp.is_totp_shaped(first, params) and totp.is_totp_shaped(second, params)):
        return None
    secret = ctx.keys.unseal(row.name, device.secret)
    step = totp.time_step(now, params.period)
    reach = totp.resync_steps(params.period)
    low, high = step - reach, step + reach
    # Both steps of the pair must still be unused; the second follows the first.
    firsts = set(
        totp.fresh_steps(totp.matching_steps(secret, params, first, low, high), device.last_step)
    )
    seconds = totp.matching_steps(secret, params, second, low, high)
    later = [s for s in seconds if s - 1 in firsts]
    return (max(later), max(later) - step) if later else None


def _record_success(
    ctx: Context,
    row: UserRow,
    now: float,
    origin: str,
    *,
    device: str | None = None,
    step: int | None = None,
    drift: int | None = None,
) -> None:
    """The back-off ends; the lifetime count keeps what this success does not forgive."""
    state = lockout.after_success(ctx.policy.lockout, row.lock, now, origin)
    ctx.store.record_success(row, state, now, device=device, step=step, drift=drift, host=ctx.host)


def _record_failure(
    ctx: Context, row: UserRow, now: float, origin: str, result: str
) -> dict[str, Any]:
    state = lockout.after_failure(ctx.policy.lockout, row.lock, now, origin)
    ctx.store.record_failure(row, state, now)
    return failed_reply(result, state, now)
