"""Accounts with two-step verification set up, for tests of the hook and the commands."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from support.daemon import Daemon
from support.oath import CodeSource, fresh_step, oathtool
from support.users import TestUser

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "pam_twofa" / "hook.py"


@dataclass
class Enrolled:
    user: TestUser
    codes: CodeSource
    recovery_codes: list[str]


def enroll(daemon: Daemon, user: str) -> tuple[CodeSource, list[str]]:
    """Enroll and confirm `user` with a code from oathtool.

    The confirming code is the previous step's (still inside the ±1 window), which
    leaves the current and the next step free: two logins without waiting.
    """
    secret = str(daemon.request("enroll.begin", user=user)["secret"])
    source = CodeSource(secret)
    earlier = time.time() - 30
    confirmed = daemon.request("enroll.confirm", user=user, code=oathtool(secret, earlier))
    source.spend(earlier)
    return source, list(confirmed["recovery_codes"])  # type: ignore[call-overload]


def enroll_at_step(daemon: Daemon, user: str, period: int = 30) -> tuple[str, int, list[str]]:
    """Enroll and confirm `user` with the code of a step that has seconds left; the
    confirmation spends that step, which is returned with the key and recovery codes."""
    secret = str(daemon.request("enroll.begin", user=user)["secret"])
    step = fresh_step(period)
    confirmed = daemon.request("enroll.confirm", user=user, code=oathtool(secret, step * period))
    assert confirmed["state"] == "active"
    return secret, step, list(confirmed["recovery_codes"])  # type: ignore[call-overload]
