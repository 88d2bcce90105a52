"""How a lock-out is told to a client: one shape for every reply that can carry it.

check, verify, resync and the answers for names with no account all say it the same
way, so that the replies for a real account and an invented name cannot be told apart.
"""

from __future__ import annotations

import math
from typing import Any

from pam_twofa import protocol as p
from pam_twofa.errors import TwofaError

from .. import lockout


class ServiceError(TwofaError):
    """An operation refused by a rule of the service (a lock, a wrong code, no account)."""


def locked_reply(state: lockout.LockState, now: float) -> dict[str, Any] | None:
    """What a client is told while `state` locks the account, or None if it does not.

    The one shape of a lock-out for every reply (check, verify, resync, a name with no
    account): a hard lock has no time to wait, a timed one whole seconds rounded up.
    """
    remaining = lockout.retry_after(state, now)
    if remaining is None:
        return None
    if math.isinf(remaining):
        return {"result": p.LOCKED, "retry_after": None, "hard_locked": True}
    return {
        "result": p.LOCKED,
        "retry_after": lockout.seconds_to_show(remaining),
        "hard_locked": False,
    }


def failed_reply(result: str, state: lockout.LockState, now: float) -> dict[str, Any]:
    """The reply to a failed code: `result`, and the lock-out it started, if any."""
    reply: dict[str, Any] = {"result": result}
    locked = locked_reply(state, now)
    if locked is not None:
        reply.update(locked, result=result)
    return reply
