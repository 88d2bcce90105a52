"""Putting a new policy in force, and what it would mean before it is.

A policy that would leave no administrator a way in is refused unless forced; the
impact report pages through who a policy would require and who of them has no app.
The arithmetic of both is in `impact`; here it is run over the store in one read.
"""

from __future__ import annotations

from typing import Any

from pam_twofa import protocol as p
from pam_twofa import vocabulary as v

from .. import impact
from ..policy import REQUIRED, Policy
from .context import PAGE_SIZE, Context, ServiceError


def replace_policy(ctx: Context, new: Policy, *, force: bool = False) -> None:
    """Put `new` in force, unless it would shut every administrator out."""
    with ctx.store.transaction():
        risk = impact.lockout_risk(new, ctx.store.get_user, ctx.directory)
    if risk is not None and not force:
        raise ServiceError(p.WOULD_LOCK_OUT, risk)
    ctx.policy = new


def policy_impact(
    ctx: Context, new: Policy, after: str | None = None, limit: int = PAGE_SIZE
) -> dict[str, Any]:
    """Who `new` would require (one page of them), who is not set up, any lock-out risk."""

    def read(now: float) -> dict[str, Any]:
        def required(name: str) -> dict[str, Any] | None:
            decision = impact.requirement(new, name, ctx.directory)
            if decision.action != REQUIRED:
                return None
            state = impact.state_of(ctx.store.get_user(name), True, now)
            return {"user": name, "state": state, "rule": decision.rule}

        names = impact.candidates(ctx.store.user_names(), ctx.directory)
        page, cursor = impact.page(names, after, limit, required)
        return {
            "source": new.source,
            "rules": len(new.rules),
            "required": page,
            "incomplete": [r["user"] for r in page if r["state"] == v.INCOMPLETE],
            "lockout_risk": impact.lockout_risk(new, ctx.store.get_user, ctx.directory),
            "next": cursor,
        }

    return ctx.atomic(read)
