"""Back-off after failed codes (NIST SP 800-63B §5.2.2), as arithmetic on a clock.

After `after` consecutive failures a user is locked for `first` seconds; every further
failure doubles the lock up to `maximum`; at `hard_after` failures the lock stays until
an administrator lifts it.  A success resets the count.  While locked, no code is even
checked, so an attacker learns nothing and the lock cannot be worked around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LockoutPolicy:
    after: int = 5
    first: float = 30.0
    maximum: float = 3600.0
    hard_after: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.after <= self.hard_after:
            raise ValueError("lock-out must start after 1 or more failures, before the hard lock")
        if not 0 < self.first <= self.maximum:
            raise ValueError("the first lock must be positive and at most the longest")


@dataclass(frozen=True)
class LockState:
    failures: int
    locked_until: float | None
    hard_locked: bool


def retry_after(state: LockState, now: float) -> float | None:
    """Seconds until the user may try again: None if not locked, inf if hard-locked."""
    if state.hard_locked:
        return math.inf
    if state.locked_until is not None and state.locked_until > now:
        return state.locked_until - now
    return None


def after_failure(policy: LockoutPolicy, state: LockState, now: float) -> LockState:
    failures = state.failures + 1
    if failures >= policy.hard_after:
        return LockState(failures, None, True)
    if failures >= policy.after:
        seconds = min(policy.first * 2.0 ** min(failures - policy.after, 64), policy.maximum)
        return LockState(failures, now + seconds, False)
    return LockState(failures, None, False)


def seconds_to_show(remaining: float) -> int:
    """Whole seconds, rounded up, so "try again in N seconds" is never too early."""
    return max(1, math.ceil(remaining))
