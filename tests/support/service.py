"""For unit tests that drive twofad's service directly: codes at the injected clock, and
accounts set up through the service's own enrollment.

Codes here come from twofad.totp, checked against RFC 6238 and oathtool in test_totp;
the integration tests' codes come from oathtool itself (support.oath).
"""

from __future__ import annotations

from typing import NamedTuple

from support.fakes import Clock
from twofad import totp
from twofad.policy_file import parse
from twofad.service import Service

PARAMS = totp.TotpParams()  # what the tests' policy gives a new key: SHA1, 6 digits, 30 s


def code(secret: str, clock: Clock, steps: int = 0, params: totp.TotpParams = PARAMS) -> str:
    """The code for `steps` time steps from the clock's now."""
    return totp.code_at(secret, params, totp.time_step(clock.now, params.period) + steps)


def wrong(secret: str, clock: Clock) -> str:
    """A code certainly not accepted now: none of the window's three."""
    valid = {code(secret, clock, offset) for offset in (-1, 0, 1)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in valid)


class Enrolled(NamedTuple):
    secret: str
    recovery_codes: list[str]


def enroll(service: Service, clock: Clock, user: str = "alice") -> Enrolled:
    """Set up and confirm `user` with the current code, then move to the next time step.

    The confirming step is spent; the test starts on a fresh one, with the previous
    step (spent) and the next one (free) inside the window.
    """
    secret = service.enroll_begin(user)["secret"]
    codes = service.enroll_confirm(user, code(secret, clock))["recovery_codes"]
    clock.advance(30)
    return Enrolled(secret, codes)


def fail(service: Service, user: str, times: int) -> list[dict[str, object]]:
    """`times` wrong codes for `user`, two different ones in turn (so none is a replay)."""
    return [service.verify(user, "000000" if i % 2 else "999999") for i in range(times)]


def use_policy(service: Service, text: str) -> None:
    """Put the policy written in `text` in force, as a reload would, without its guard."""
    service.policy = parse(text, "policy.yaml")
