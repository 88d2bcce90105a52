"""Setting up an app: a first device (pending until a code from it confirms it), a
device's key shown again, and taking over a key an app already has from another PAM
module.

A pending device never replaces an active one until it is confirmed, so a renewal
leaves the account usable throughout.  A new start (a first device, a renewal, an
import) clears the lock-out counts (guesses at the old key tell nothing about the new
one) and hands out recovery codes; the time steps already used stay used.  One more
device beside the others is in `devices`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from pam_twofa import protocol as p
from pam_twofa import vocabulary as v

from .. import recovery, totp
from ..store import Brought, BroughtDevice, DeviceRow, SealedSecret, UserRow
from .context import Context, ServiceError
from .proof import with_proof


def begin(
    ctx: Context,
    user: str,
    *,
    replace: bool = False,
    code: str | None = None,
    needs_proof: bool = False,
    device: str | None = None,
) -> dict[str, Any]:
    """A first device, pending until a code from it confirms it.

    With `replace` (a renewal: a key may have leaked, or every device is to start
    over), the new device replaces all the others once confirmed; they keep working
    until then.  A user renewing their own needs a current code.
    """
    ctx.require_account(user)
    params = ctx.policy.totp
    secret = totp.new_secret()
    sealed = SealedSecret(ctx.keys.seal(user, secret), params)

    def start(now: float) -> str:
        row = ctx.store.get_user(user)
        if row is not None and row.active and not replace:
            raise ServiceError(
                p.ALREADY_ENROLLED,
                f"{user} already uses two-step verification; add another device with "
                "device add, renew every key with reset (twofa enroll --replace), "
                "or disable it first",
            )
        renews = row is not None and row.active  # only with `replace`, as checked above
        name = _first_name(row, device, renewal=renews)
        ctx.store.begin_device(user, row, name, sealed, now, renews=renews)
        return name

    name = with_proof(ctx, user, code, needs_proof and replace, start)
    return {**provisioning(ctx, user, secret, params), "device": name}


def _first_name(row: UserRow | None, asked: str | None, *, renewal: bool) -> str:
    """The name of a first (or renewing) device: the one asked for, else the default.

    A renewal's device replaces the others only once confirmed, so until then its name
    must be free among them: the default becomes "phone 2" where "phone" is taken.
    """
    if row is None or not renewal:
        return asked or v.DEFAULT_DEVICE
    if asked is None:
        return free_name(row, v.DEFAULT_DEVICE)
    taken = row.device(asked)
    if taken is not None and taken.active:
        raise ServiceError(p.DEVICE_EXISTS, f"{row.name} already has a device {taken.name!r}")
    return asked


def free_name(row: UserRow, base: str) -> str:
    """`base`, or `base 2`, `base 3`...: the first name no active device of `row` holds."""
    for number in range(1, v.MAX_DEVICES + 2):
        name = base if number == 1 else f"{base} {number}"
        held = row.device(name)
        if held is None or not held.active:
            return name
    raise AssertionError("more devices than the bound allows")


def provisioning(ctx: Context, user: str, secret: str, params: totp.TotpParams) -> dict[str, Any]:
    """What an app needs: the key, grouped for typing, the URI and its QR code (as
    terminal text, and as an image for the web console)."""
    issuer = ctx.policy.issuer_name
    uri = totp.provisioning_uri(secret, user, issuer, params)
    return {
        "user": user,
        "secret": secret,
        "secret_grouped": totp.grouped(secret),
        "uri": uri,
        "qr": totp.qr_text(uri),
        "qr_image": totp.qr_image(uri),
        "issuer": issuer,
        "algorithm": params.algorithm,
        "digits": params.digits,
        "period": params.period,
    }


def show_secret(ctx: Context, user: str, code: str, device: str | None = None) -> dict[str, Any]:
    """A device's key again, to restore it on that same device; only with a current code.

    Another device gets a key of its own (device add), so losing one never means
    replacing the key on all of them.
    """

    def show(now: float) -> dict[str, Any]:
        row = ctx.active_row(user)
        chosen = pick_device(row, device, row.active_devices, "show")
        secret = ctx.keys.unseal(user, chosen.secret)
        return {**provisioning(ctx, user, secret, chosen.params), "device": chosen.name}

    return with_proof(ctx, user, code, True, show)


def pick_device(
    row: UserRow, asked: str | None, among: Sequence[DeviceRow], verb: str
) -> DeviceRow:
    """The device `asked` for among `among`, or the only one there if none is named."""
    if asked is None:
        if len(among) == 1:
            return among[0]
        names = ", ".join(repr(d.name) for d in among) or "none"
        raise ServiceError(
            p.BAD_REQUEST, f"name the device to {verb} (--device NAME): {row.name} has {names}"
        )
    found = row.device(asked)
    if found is None or found not in among:
        raise ServiceError(p.UNKNOWN_DEVICE, f"{row.name} has no device {asked!r} to {verb}")
    return found


def confirm(ctx: Context, user: str, code: str, device: str | None = None) -> dict[str, Any]:
    """Activate a pending device with a code from it; recovery codes come with a new start."""
    return ctx.atomic(lambda now: _confirm(ctx, user, code, device, now))


def _confirm(ctx: Context, user: str, code: str, device: str | None, now: float) -> dict[str, Any]:
    row = ctx.known_row(user)
    if not row.pending_devices:
        raise ServiceError(
            p.NOT_ENROLLED, f"{user} has no set-up in progress; begin one with enroll"
        )
    pending = pick_device(row, device, row.pending_devices, "confirm")
    params = pending.params
    secret = ctx.keys.unseal(user, pending.secret)
    step = totp.time_step(now, params.period)
    typed = totp.normalize(code)
    window = ctx.policy.window
    matches = (
        totp.matching_steps(secret, params, typed, step - window, step + window)
        if totp.is_totp_shaped(typed, params)
        else []
    )
    if not matches:
        raise ServiceError(
            p.INVALID_CODE,
            f"that code does not match the new key of {pending.name!r}; "
            "check the app's entry and the clock",
        )
    confirmed = {"user": user, "state": v.ACTIVE, "device": pending.name}
    if row.active and not pending.renews:  # one more device: the account goes on as it was
        ctx.store.activate_device(row, pending, max(matches), now, None)
        return confirmed
    codes, digests = recovery.new_codes(ctx.keys, user, ctx.policy.recovery_codes)
    ctx.store.activate_device(row, pending, max(matches), now, digests)
    return {**confirmed, "recovery_codes": codes}


def import_secret(
    ctx: Context,
    user: str,
    secret: str,
    params: totp.TotpParams,
    recovery_codes: list[str],
    *,
    window: int | None = None,
    used_step: int | None = None,
    replace: bool = False,
    device: str | None = None,
) -> dict[str, Any]:
    """Take over a secret an app already has (google-authenticator, pam_oath).

    The account is active at once, with this key as its one device (named after where
    it came from); its old single-use codes become recovery codes.  `window` keeps the
    old module's tolerance for this key; `used_step` is the last time step the old
    module accepted, so a code it took is not taken again here.  Re-importing a key
    the account already has changes nothing; another key for an enrolled account is
    refused unless `replace`, so running an import twice is safe.
    """
    ctx.require_account(user)
    name = device or IMPORTED
    sealed = SealedSecret(ctx.keys.seal(user, secret), params)
    try:
        digests = recovery.digests_of(ctx.keys, user, recovery_codes)
    except ValueError as exc:
        raise ServiceError(p.BAD_REQUEST, str(exc)) from None

    def take_over(now: float) -> dict[str, Any]:
        row = ctx.store.get_user(user)
        if row is not None and row.active and not replace:
            held = _holding(ctx, row, secret, params)
            if held is not None:
                return {"user": user, "state": v.ACTIVE, "device": held, "unchanged": True}
            raise ServiceError(
                p.ALREADY_ENROLLED,
                f"{user} is already enrolled with another key; use --replace to overwrite",
            )
        used = _last_used_step(row, used_step, params, secret, ctx)
        brought = BroughtDevice(name, sealed, used, window)
        ctx.store.take_over(user, row, Brought([brought], digests), now)
        return {"user": user, "state": v.ACTIVE, "device": name, "recovery_codes": len(digests)}

    return ctx.atomic(take_over)


IMPORTED = "imported"  # an imported key's device, where the import does not say whence


def _holding(ctx: Context, row: UserRow, secret: str, params: totp.TotpParams) -> str | None:
    """The name of the device of `row` that has exactly this key and these parameters."""
    held = None
    for device in row.active_devices:
        same_key = hmac.compare_digest(
            ctx.keys.unseal(row.name, device.secret).encode(), secret.encode()
        )
        if same_key and device.params == params and held is None:
            held = device.name
    return held


def _last_used_step(
    row: UserRow | None,
    used_step: int | None,
    params: totp.TotpParams,
    secret: str,
    ctx: Context,
) -> int | None:
    """The last time step the imported key must not accept again.

    The old module's (`used_step`), and the steps a device of this account holding the
    same key has already used: importing it again (with --replace) must not make a code
    seen today valid again.
    """
    if row is None:
        return used_step
    steps = [used_step]
    for device in row.devices:
        if hmac.compare_digest(ctx.keys.unseal(row.name, device.secret).encode(), secret.encode()):
            steps.append(totp.carry_step(device.last_step, device.period, params.period))
    return max((s for s in steps if s is not None), default=None)
