"""One unprivileged local user floods twofad; the logins root waits on still get their answers.

A throwaway account runs the flood as itself (support/flood.py): two processes, each with
16 connections of 8 pipelined requests about its own account: one sends only set-ups
(each renders a QR code), the other mixes them with its status, the policy's verdict,
what a login would do, and garbage lines. In the second test a third process opens and
closes connections in a loop. Meanwhile real logins
go through pamtester, pam_python.so and the hook with its default 5 s time-out: a hook
that times out would let a wrong code in under fail=open and refuse an honest person
under fail=secure. Outcomes are asserted, never times: the machines are shared.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from support import flood
from support.cli import twofactl
from support.daemon import Daemon
from support.enrollment import HOOK, Enrolled, enroll
from support.oath import oathtool
from support.pam import PAM_PYTHON, pam_service, pamtester
from support.users import TestUser, throwaway_user

pytestmark = pytest.mark.integration

CONNECTIONS = (16, 16)  # per flooding process; together the per-uid cap of 32
DEPTH = 8  # requests in flight on each connection
ROUNDS = 2  # each round: a wrong code under fail=open, then a right one under fail=secure


@dataclass
class Stack:
    daemon: Daemon
    victims: list[Enrolled]
    flooder: TestUser
    services: dict[str, str]


@pytest.fixture
def stack(hook_daemon: Daemon) -> Iterator[Stack]:
    with throwaway_user() as first, throwaway_user() as second, throwaway_user() as flooder:
        victims = []
        for user in (first, second):
            codes, recovery = enroll(hook_daemon, user.name)
            victims.append(Enrolled(user, codes, recovery))
        with (
            pam_service("twofa-test", _lines(hook_daemon, "fail=open")) as fail_open,
            pam_service("twofa-test", _lines(hook_daemon, "fail=secure")) as fail_secure,
        ):
            yield Stack(hook_daemon, victims, flooder, {"open": fail_open, "secure": fail_secure})


def _lines(daemon: Daemon, fail: str) -> list[str]:
    return [
        f"auth required {PAM_PYTHON} {HOOK} socket={daemon.socket} {fail}",
        "account required pam_permit.so",
    ]


def _wrong_code(victim: Enrolled) -> str:
    """Six digits that match none of the steps around now."""
    now = time.time()
    taken = {oathtool(victim.codes.secret, now + 30 * offset) for offset in range(-2, 4)}
    return next(code for code in ("000000", "111111", "222222") if code not in taken)


def _logins_while_flooding(stack: Stack, churn: bool) -> dict[str, int]:
    """Every login outcome asserted while the user floods; the flood's answers, summed."""
    lines = flood.setup_lines(stack.flooder.name), flood.mixed_lines(stack.flooder.name)
    configs = [
        flood.pipeline(stack.daemon.socket, kind, n, DEPTH)
        for kind, n in zip(lines, CONNECTIONS, strict=True)
    ]
    if churn:
        configs.append(flood.churn(stack.daemon.socket))
    user = stack.flooder
    with flood.flooding(user.uid, user.gid, user.home, configs) as flooders:
        time.sleep(1.0)  # every connection open, every pipeline full
        for round_no in range(ROUNDS):
            for victim in stack.victims:
                name = victim.user.name
                wrong = pamtester(stack.services["open"], name, [_wrong_code(victim)])
                assert not wrong.ok, f"round {round_no}: a wrong code got in for {name}\n{wrong}"
                right = pamtester(stack.services["secure"], name, [victim.codes.next()])
                assert right.ok, f"round {round_no}: {name} was refused a right code\n{right}"
        for victim in stack.victims:
            unlocked = twofactl(stack.daemon.socket, "unlock", victim.user.name)
            assert unlocked.returncode == 0, unlocked.stderr
    figures = flood.total([f for f in flooders if f.config["mode"] == "pipeline"])
    assert figures["answered"] > 0, figures  # the flood itself was served too
    return figures


def test_a_pipelined_flood_of_costly_requests_delays_no_login(stack: Stack) -> None:
    figures = _logins_while_flooding(stack, churn=False)
    assert figures.get("answers.rate_limited", 0) > 0, figures


def test_a_connect_close_loop_beside_the_flood_delays_no_login(stack: Stack) -> None:
    figures = _logins_while_flooding(stack, churn=True)
    assert figures.get("answers.rate_limited", 0) > 0, figures
