"""A person acting on their own account proves it with a current code first.

Renewing the key, seeing it again, switching two-step verification off and new
recovery codes all change what protects the account, so through `twofa` they need a
code as a login would.  The proof is a verify like any other: a wrong one counts
toward the lock-out and is committed before the refusal is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pam_twofa import protocol as p

from .context import COMMAND_ORIGIN, Context, ServiceError
from .logins import verify_now

T = TypeVar("T")


def with_proof(
    ctx: Context, user: str, code: str | None, needs_proof: bool, action: Callable[[float], T]
) -> T:
    """Run `action(now)` in one transaction, after the proof if `needs_proof`."""

    def guarded(now: float) -> T | ServiceError:
        refusal = _check(ctx, user, code, now) if needs_proof else None
        return refusal if refusal is not None else action(now)

    result = ctx.atomic(guarded)
    if isinstance(result, ServiceError):
        raise result
    return result


def _check(ctx: Context, user: str, code: str | None, now: float) -> ServiceError | None:
    """None if `code` proves the account is the caller's, else the refusal to raise."""
    row = ctx.store.get_user(user)
    if row is not None and not row.active:
        return None  # nothing is protected yet: a pending set-up needs no proof
    if code is None:
        return ServiceError(p.UNAUTHORIZED, "a current verification code is required")
    result = verify_now(ctx, user, code, now, COMMAND_ORIGIN)["result"]
    if result == p.ACCEPTED:
        return None
    if result == p.LOCKED:
        return ServiceError(p.LOCKED, "too many failed attempts; try again later")
    if result == p.NOT_ENROLLED:
        return ServiceError(p.NOT_ENROLLED, f"{user} has not set up two-step verification")
    return ServiceError(p.INVALID_CODE, "the verification code was not accepted")
