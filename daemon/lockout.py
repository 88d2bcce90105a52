"""Back-off and the lifetime budget of failed codes (NIST SP 800-63B §5.2.2), as arithmetic.

Two counts.  `failures` counts failures in a row: after `after` of them a user is locked
for `first` seconds, every further one doubles the lock up to `maximum`, and a success
resets it, so the owner is never slowed for long.  `strikes` counts failures over the
account's whole life: a success does not reset it, and at `hard_after` strikes the lock
holds until an administrator lifts it.  So an attacker who has the password gets at
most `hard_after` guesses at the code, however often the real owner logs in between.

The owner's own typos must not add up to that hard lock over years of logins, so a
success *forgives* the failures it plainly follows: those since the previous success
that came from the same origin (PAM service and remote host) within `forgive_within`
seconds before it, at most `forgivable` of them.  A guess from anywhere else is never
forgiven; one from the owner's own origin (the same NAT) is forgiven at most
`forgivable` times per login of the owner's.

While locked, no code is even checked, so an attacker learns nothing and the lock
cannot be worked around.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

MAX_FORGIVEN = 10  # failures one success may forgive, whatever `after` is


@dataclass(frozen=True)
class LockoutPolicy:
    after: int = 5
    first: float = 30.0
    maximum: float = 3600.0
    hard_after: int = 100
    forgive_within: float = 600.0  # 0: nothing is ever forgiven

    def __post_init__(self) -> None:
        if not 1 <= self.after <= self.hard_after:
            raise ValueError("lock-out must start after 1 or more failures, before the hard lock")
        if not 0 < self.first <= self.maximum:
            raise ValueError("the first lock must be positive and at most the longest")
        if self.forgive_within < 0:
            raise ValueError("the forgiveness window cannot be negative")

    @property
    def forgivable(self) -> int:
        """Failures one success may forgive: those that come before any back-off.

        `after - 1` is what the owner can get wrong without being slowed down; at least
        one, so that a strict `after: 1` still forgives a single typo; at most
        MAX_FORGIVEN, which also bounds what is kept per account.
        """
        return min(max(self.after - 1, 1), MAX_FORGIVEN)


@dataclass(frozen=True)
class Failure:
    """One failed code still open to forgiveness: when, and from which origin."""

    at: float
    origin: str


@dataclass(frozen=True)
class LockState:
    failures: int
    locked_until: float | None
    hard_locked: bool
    strikes: int = 0
    recent: tuple[Failure, ...] = ()  # failures since the last success, newest last


def origin_of(service: str | None, rhost: str | None) -> str:
    """A short fixed-size name for where a login came from: PAM service and remote host.

    Hashed only to keep each kept failure small; it is not a secret (the journal has
    the service and host of every attempt).
    """
    text = json.dumps([service, rhost], ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def retry_after(state: LockState, now: float) -> float | None:
    """Seconds until the user may try again: None if not locked, inf if hard-locked."""
    if state.hard_locked:
        return math.inf
    if state.locked_until is not None and state.locked_until > now:
        return state.locked_until - now
    return None


def after_failure(
    policy: LockoutPolicy, state: LockState, now: float, origin: str = ""
) -> LockState:
    failures = state.failures + 1
    strikes = state.strikes + 1
    # Only the newest ones can be forgiven, so only they are kept.
    recent = (*state.recent, Failure(now, origin))[-policy.forgivable :]
    if strikes >= policy.hard_after:
        return LockState(failures, None, True, strikes, recent)
    if failures >= policy.after:
        seconds = min(policy.first * 2.0 ** min(failures - policy.after, 64), policy.maximum)
        return LockState(failures, now + seconds, False, strikes, recent)
    return LockState(failures, None, False, strikes, recent)


def forgiven_by(policy: LockoutPolicy, state: LockState, now: float, origin: str) -> int:
    """How many of the failures since the last success a success from `origin` forgives."""
    if policy.forgive_within <= 0:
        return 0
    matching = sum(
        1
        for failure in state.recent
        if failure.origin == origin and 0 <= now - failure.at <= policy.forgive_within
    )
    return min(matching, policy.forgivable, state.failures, state.strikes)


def after_success(policy: LockoutPolicy, state: LockState, now: float, origin: str) -> LockState:
    """The back-off ends; the lifetime count keeps every failure this success does not forgive."""
    strikes = state.strikes - forgiven_by(policy, state, now, origin)
    return LockState(0, None, False, strikes, ())


def encode_recent(recent: tuple[Failure, ...]) -> str | None:
    """The kept failures as the store's text column (None when there are none)."""
    if not recent:
        return None
    return json.dumps([[failure.at, failure.origin] for failure in recent], separators=(",", ":"))


def decode_recent(text: str | None) -> tuple[Failure, ...]:
    """The kept failures from the store; anything unreadable forgives nothing."""
    if not text:
        return ()
    try:
        items = json.loads(text)
        return tuple(
            Failure(float(at), origin)
            for at, origin in items
            if isinstance(origin, str) and isinstance(at, int | float)
        )
    except (ValueError, TypeError):
        return ()


def seconds_to_show(remaining: float) -> int:
    """Whole seconds, rounded up, so "try again in N seconds" is never too early."""
    return max(1, math.ceil(remaining))
