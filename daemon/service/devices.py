"""An account's devices: listing them, one more, a new name, one lost and removed.

Each device has its own key, so losing one never means re-scanning the others: it is
removed, and the rest go on as they were.  Adding one needs a current code (from any
active device, or a recovery code) where the account is the caller's own; the device
is active once a code from it confirms it (enrollment.confirm).  The last active
device is not removed here: that is switching two-step verification off, `disable`,
where the policy may forbid it.  At most MAX_DEVICES per account, pending ones
included, because a login compares the codes of every one of them.
"""

from __future__ import annotations

from typing import Any

from pam_twofa import protocol as p
from pam_twofa import vocabulary as v

from .. import totp
from ..store import DeviceRow, SealedSecret, UserRow
from .context import Context, ServiceError
from .enrollment import pick_device, provisioning
from .proof import with_proof


def described(device: DeviceRow) -> dict[str, Any]:
    """A device as listings show it: never its key."""
    return {
        "name": device.name,
        "state": v.ACTIVE if device.active else v.PENDING,
        "added_at": device.added_at,
        "confirmed_at": device.confirmed_at,
        "last_used": device.last_used,
        "algorithm": device.algorithm,
        "digits": device.digits,
        "period": device.period,
        "drift": device.drift,  # steps its clock is off, as a resync measured
        "renews": device.renews,
    }


def list_devices(ctx: Context, user: str) -> dict[str, Any]:
    def read(now: float) -> dict[str, Any]:
        row = ctx.store.get_user(user)
        if row is None:
            ctx.require_account(user)
        devices = [described(d) for d in row.devices] if row is not None else []
        return {"user": user, "devices": devices, "max_devices": v.MAX_DEVICES}

    return ctx.atomic(read)


def add(
    ctx: Context, user: str, device: str, code: str | None = None, *, needs_proof: bool = False
) -> dict[str, Any]:
    """A new device beside the others, with a key of its own, pending until confirmed."""
    params = ctx.policy.totp
    secret = totp.new_secret()
    sealed = SealedSecret(ctx.keys.seal(user, secret), params)

    def begin(now: float) -> None:
        row = ctx.active_row(user)
        taken = row.device(device)
        if taken is not None and taken.active:
            raise ServiceError(p.DEVICE_EXISTS, f"{user} already has a device {taken.name!r}")
        _refuse_over_bound(row, taken)
        ctx.store.begin_device(user, row, device, sealed, now)

    with_proof(ctx, user, code, needs_proof, begin)
    return {**provisioning(ctx, user, secret, params), "device": device}


def _refuse_over_bound(row: UserRow, replaced: DeviceRow | None) -> None:
    """A renewal in progress does not count: confirmed, it leaves one device only."""
    counted = [d for d in row.devices if d is not replaced and not d.renews]
    if len(counted) >= v.MAX_DEVICES:
        raise ServiceError(
            p.TOO_MANY_DEVICES,
            f"{row.name} has {len(counted)} devices, as many as an account may hold; "
            "remove one first",
        )


def rename(ctx: Context, user: str, device: str, new_name: str) -> dict[str, Any]:
    def change(now: float) -> dict[str, Any]:
        row = ctx.known_row(user)
        found = pick_device(row, device, row.devices, "rename")
        other = row.device(new_name)
        if other is not None and other is not found:
            raise ServiceError(p.DEVICE_EXISTS, f"{user} already has a device {other.name!r}")
        if new_name != found.name:
            ctx.store.rename_device(row, found.name, new_name)
        return {"user": user, "device": new_name, "renamed_from": found.name}

    return ctx.atomic(change)


def remove(
    ctx: Context, user: str, device: str, code: str | None = None, *, needs_proof: bool = False
) -> dict[str, Any]:
    """One device removed; its codes are refused from now on, the others' still work.

    The proof may come from any active device, this one too (a device retired in
    hand) or a recovery code (the lost-phone path).
    """

    def drop(now: float) -> dict[str, Any]:
        row = ctx.known_row(user)
        found = pick_device(row, device, row.devices, "remove")
        others = [d for d in row.active_devices if d is not found]
        if found.active and not others:
            raise ServiceError(
                p.LAST_DEVICE,
                f"{found.name!r} is the last active device of {user}; to switch two-step "
                "verification off use disable, or add another device first",
            )
        ctx.store.remove_device(row, found.name)
        return {"user": user, "removed": found.name, "devices_left": len(others)}

    return with_proof(ctx, user, code, needs_proof, drop)
