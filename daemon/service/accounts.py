"""One account's state and what an administrator (or its owner) does to it.

Reading: status, the paged listing, and `explain` (the decision for one login and the
rule behind it).  Changing: switching two-step verification off, lifting a lock-out,
new recovery codes.  What the owner may do alone is limited here too: no switching off
where the policy requires it, and a current code for anything that weakens the account.
"""

from __future__ import annotations

from typing import Any

from pam_twofa import protocol as p
from pam_twofa import vocabulary as v

from .. import emailing, impact, recovery
from ..policy import REQUIRED
from ..store import UserRow
from . import devices
from .context import PAGE_SIZE, Context, ServiceError
from .proof import with_proof
from .replies import locked_reply


def status(ctx: Context, user: str) -> dict[str, Any]:
    def read(now: float) -> dict[str, Any]:
        row = ctx.store.get_user(user)
        if row is None:
            ctx.require_account(user)
        return describe(ctx, user, row, now)

    return ctx.atomic(read)


def list_users(ctx: Context, after: str | None = None, limit: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of the enrolled users and the accounts the policy requires."""

    def read(now: float) -> dict[str, Any]:
        def listed(name: str) -> dict[str, Any] | None:
            row = ctx.store.get_user(name)
            described = describe(ctx, name, row, now)
            return described if row is not None or described["required"] else None

        names = impact.candidates(ctx.store.user_names(), ctx.directory)
        users, cursor = impact.page(names, after, limit, listed)
        return {"users": users, "next": cursor}

    return ctx.atomic(read)


def decision(
    ctx: Context, user: str, service: str | None = None, rhost: str | None = None
) -> dict[str, Any]:
    """The policy's decision for one login and the rule behind it; no store is read, so
    this is answered while the state database is out of reach too."""
    policy = ctx.policy
    decided = policy.decide(user, lambda: ctx.directory.groups_of(user), service, rhost)
    return {
        "user": user,
        "service": service,
        "rhost": rhost,
        "action": decided.action,
        "rule": decided.rule,
        "line": decided.where(policy.source),
        "email_allowed": decided.email,  # whether a code may be asked for by email
        "state": None,  # not known without the store
        "known": ctx.directory.uid_of(user) is not None,
    }


def explain(
    ctx: Context, user: str, service: str | None = None, rhost: str | None = None
) -> dict[str, Any]:
    """The decision for one login, the rule behind it, and the user's state."""
    decided = decision(ctx, user, service, rhost)

    def read(now: float) -> dict[str, Any]:
        row = ctx.store.get_user(user)
        required = decided["action"] == REQUIRED
        return {**decided, "state": impact.state_of(row, required, now)}

    return ctx.atomic(read)


def describe(ctx: Context, user: str, row: UserRow | None, now: float) -> dict[str, Any]:
    """An account as status and the listing show it: state, counts, key parameters."""
    decision = impact.requirement(ctx.policy, user, ctx.directory)
    described: dict[str, Any] = {
        "user": user,
        "state": impact.state_of(row, decision.action == REQUIRED, now),
        "rule": decision.rule,
        "required": decision.action == REQUIRED,
        "enrollment": "none",
    }
    if row is None:
        return described
    locked = locked_reply(row.lock, now)
    described.update(
        {
            "enrollment": _enrollment(row),
            "renewal_pending": any(d.renews for d in row.pending_devices),
            "enrolled_at": row.enrolled_at,
            "last_success": row.last_success,
            "last_host": row.last_host,
            "last_failure": row.last_failure,
            "failures": row.failures,
            "strikes": row.strikes,
            "hard_after": ctx.policy.lockout.hard_after,
            "locked": locked is not None,
            "retry_after": None if locked is None else locked["retry_after"],
            "hard_locked": bool(row.hard_locked),
            "recovery_codes_left": ctx.store.unused_recovery_count(row.name),
            "devices": [devices.described(d) for d in row.devices],
            "email": row.email,
            "email_pending": row.email_pending
            if emailing.live(row.email_pending_expires, now)
            else None,
        }
    )
    return described


def _enrollment(row: UserRow) -> str:
    if row.active:
        return v.ACTIVE
    return v.PENDING if row.pending_devices else "none"


def disable(ctx: Context, user: str, code: str | None = None, *, needs_proof: bool = False) -> None:
    """Switch two-step verification off: secret, pending set-up and recovery codes go.

    A user may not switch it off for themselves where the policy requires it.
    """
    if needs_proof:
        decision = impact.requirement(ctx.policy, user, ctx.directory)
        if decision.action == REQUIRED:
            raise ServiceError(
                p.UNAUTHORIZED,
                f"the policy requires two-step verification for {user} "
                f"(rule {decision.rule!r}); ask an administrator",
            )

    def remove(now: float) -> None:
        ctx.store.delete_user(ctx.known_row(user))

    with_proof(ctx, user, code, needs_proof, remove)


def unlock(ctx: Context, user: str) -> dict[str, Any]:
    def lift(now: float) -> dict[str, Any]:
        ctx.store.clear_lock(ctx.known_row(user))
        return {"user": user, "unlocked": True}

    return ctx.atomic(lift)


def regenerate_recovery_codes(
    ctx: Context, user: str, code: str | None = None, *, needs_proof: bool = False
) -> dict[str, Any]:
    def regenerate(now: float) -> dict[str, Any]:
        row = ctx.active_row(user)
        codes, digests = recovery.new_codes(ctx.keys, user, ctx.policy.recovery_codes)
        ctx.store.replace_recovery_codes(row, digests, now)
        return {"user": user, "recovery_codes": codes}

    return with_proof(ctx, user, code, needs_proof, regenerate)
