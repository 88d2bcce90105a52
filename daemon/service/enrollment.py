"""Setting up an app: a new key (pending until a code confirms it), showing it again,
and taking over a key an app already has from another PAM module.

A pending key never replaces an active one until it is confirmed, so a renewal or a
new phone leaves the account usable throughout.  Confirming or importing a key starts
the lock-out counts afresh (guesses at the old key tell nothing about the new one) and
hands out recovery codes; the time steps already used stay used.
"""

from __future__ import annotations

import hmac
from typing import Any

from pam_twofa import protocol as p
from pam_twofa import vocabulary as v

from .. import recovery, totp
from ..store import Brought, SealedSecret, UserRow
from .context import Context, ServiceError
from .proof import with_proof


def begin(
    ctx: Context,
    user: str,
    *,
    replace: bool = False,
    code: str | None = None,
    needs_proof: bool = False,
) -> dict[str, Any]:
    """Make a new pending secret; it replaces a pending one, never an active one.

    With `replace`, an active secret keeps working until the new one is confirmed
    (a renewal, or a new phone); a user renewing their own needs a current code.
    """
    ctx.require_account(user)
    params = ctx.policy.totp
    secret = totp.new_secret()
    pending = SealedSecret(ctx.keys.seal(user, secret), params)

    def start(now: float) -> None:
        row = ctx.store.get_user(user)
        if row is not None and row.active and not replace:
            raise ServiceError(
                p.ALREADY_ENROLLED,
                f"{user} already uses two-step verification; "
                "renew the key with reset (twofa enroll --replace), or disable it first",
            )
        ctx.store.begin_pending(user, row, pending, now)

    with_proof(ctx, user, code, needs_proof and replace, start)
    return provisioning(ctx, user, secret, params)


def provisioning(ctx: Context, user: str, secret: str, params: totp.TotpParams) -> dict[str, Any]:
    """What an app needs: the key, grouped for typing, the URI and its QR code."""
    issuer = ctx.policy.issuer_name
    uri = totp.provisioning_uri(secret, user, issuer, params)
    return {
        "user": user,
        "secret": secret,
        "secret_grouped": totp.grouped(secret),
        "uri": uri,
        "qr": totp.qr_text(uri),
        "issuer": issuer,
        "algorithm": params.algorithm,
        "digits": params.digits,
        "period": params.period,
    }


def show_secret(ctx: Context, user: str, code: str) -> dict[str, Any]:
    """The active key again, to add a second device; only with a current code."""

    def show(now: float) -> dict[str, Any]:
        row = ctx.active_row(user)
        return provisioning(ctx, user, ctx.keys.unseal(user, row.secret or b""), row.params)

    return with_proof(ctx, user, code, True, show)


def confirm(ctx: Context, user: str, code: str) -> dict[str, Any]:
    """Activate the pending secret with a code from the app; hand out recovery codes once."""
    return ctx.atomic(lambda now: _confirm(ctx, user, code, now))


def _confirm(ctx: Context, user: str, code: str, now: float) -> dict[str, Any]:
    row = ctx.known_row(user)
    if row.pending_secret is None:
        raise ServiceError(
            p.NOT_ENROLLED, f"{user} has no set-up in progress; begin one with enroll"
        )
    params = row.pending_params
    secret = ctx.keys.unseal(user, row.pending_secret)
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
            "that code does not match the new key; check the app's entry and the clock",
        )
    codes, digests = recovery.new_codes(ctx.keys, user, ctx.policy.recovery_codes)
    ctx.store.activate_pending(row, max(matches), now, digests)
    return {"user": user, "state": v.ACTIVE, "recovery_codes": codes}


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
) -> dict[str, Any]:
    """Take over a secret an app already has (google-authenticator, pam_oath).

    The account is active at once; its old single-use codes become recovery codes.
    `window` keeps the old module's tolerance for this key; `used_step` is the last
    time step the old module accepted, so a code it took is not taken again here.
    Re-importing the same key changes nothing; another key for an enrolled account
    is refused unless `replace`, so running an import twice is safe.
    """
    ctx.require_account(user)
    sealed = SealedSecret(ctx.keys.seal(user, secret), params)
    try:
        digests = recovery.digests_of(ctx.keys, user, recovery_codes)
    except ValueError as exc:
        raise ServiceError(p.BAD_REQUEST, str(exc)) from None

    def take_over(now: float) -> dict[str, Any]:
        row = ctx.store.get_user(user)
        if row is not None and row.active and not replace:
            if _holds(ctx, row, secret, params):
                return {"user": user, "state": v.ACTIVE, "unchanged": True}
            raise ServiceError(
                p.ALREADY_ENROLLED,
                f"{user} is already enrolled with another key; use --replace to overwrite",
            )
        used = _last_used_step(row, used_step, params)
        ctx.store.take_over(user, row, Brought(sealed, used, window, digests), now)
        return {"user": user, "state": v.ACTIVE, "recovery_codes": len(digests)}

    return ctx.atomic(take_over)


def _holds(ctx: Context, row: UserRow, secret: str, params: totp.TotpParams) -> bool:
    """Whether `row` already has exactly this key and these parameters."""
    held = ctx.keys.unseal(row.name, row.secret or b"")
    same_key = hmac.compare_digest(held.encode(), secret.encode())
    return same_key and row.params == params


def _last_used_step(
    row: UserRow | None, used_step: int | None, params: totp.TotpParams
) -> int | None:
    """The last time step the imported key must not accept again.

    The old module's (`used_step`), and the steps this account has already used: a
    second import of the same key must not make a code seen today valid again.
    """
    if row is None:
        return used_step
    carried = totp.carry_step(row.last_step, row.params.period, params.period)
    return max((s for s in (carried, used_step) if s is not None), default=None)
