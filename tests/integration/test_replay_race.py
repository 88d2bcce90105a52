"""Races through the live socket: one code, many simultaneous logins, one success.

Each contender has its own Client (its own connection), and all are released at once by
a barrier, so the daemon sees the requests as close together as a machine allows.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import ExitStack
from typing import Any

import pytest

from pam_twofa import protocol as p
from pam_twofa.client import Client
from support.daemon import Daemon
from support.enrollment import enroll_at_step as enroll
from support.oath import oathtool
from support.users import throwaway_user

pytestmark = pytest.mark.integration

PERIOD = 30
CONTENDERS = 50


def race(daemon: Daemon, attempts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Send every (user, code) verify at once, each on its own ready connection."""
    barrier = threading.Barrier(len(attempts))
    results: list[dict[str, Any] | BaseException | None] = [None] * len(attempts)
    clients = [Client(daemon.socket, timeout=10.0) for _ in attempts]

    def contend(index: int, user: str, code: str) -> None:
        # The client connects after the barrier: a Client that has already sent a ping
        # would stall its next request for its whole timeout (see _open_socket's peek).
        try:
            barrier.wait(timeout=20)
            results[index] = clients[index].request("verify", user=user, code=code)
        except BaseException as exc:  # reported below, with the others' results
            results[index] = exc
            barrier.abort()

    threads = [
        threading.Thread(target=contend, args=(index, user, code))
        for index, (user, code) in enumerate(attempts)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for client in clients:
            client.close()
    assert not any(thread.is_alive() for thread in threads)
    failures = [r for r in results if not isinstance(r, dict)]
    assert not failures, failures
    return [r for r in results if isinstance(r, dict)]


def test_one_totp_code_sent_fifty_times_at_once_is_accepted_once(daemon: Daemon) -> None:
    secret, step, _codes = enroll(daemon, "root")
    code = oathtool(secret, (step + 1) * PERIOD)  # the confirmation spent `step`
    results = race(daemon, [("root", code)] * CONTENDERS)

    outcomes = Counter(result["result"] for result in results)
    assert outcomes[p.ACCEPTED] == 1, outcomes
    # The losers were told replayed, until the failures locked the account: no other answer.
    assert set(outcomes) <= {p.ACCEPTED, p.REPLAYED, p.LOCKED}, outcomes
    assert outcomes[p.REPLAYED] >= 1
    winner = next(r for r in results if r["result"] == p.ACCEPTED)
    assert winner == {"user": "root", "result": p.ACCEPTED, "method": "totp", "device": "phone"}
    status = daemon.request("status", user="root")
    assert status["failures"] == outcomes[p.REPLAYED]
    assert status["last_success"] is not None


def test_one_recovery_code_sent_fifty_times_at_once_is_accepted_once(daemon: Daemon) -> None:
    _secret, _step, codes = enroll(daemon, "root")
    results = race(daemon, [("root", codes[3])] * CONTENDERS)

    outcomes = Counter(result["result"] for result in results)
    assert outcomes[p.ACCEPTED] == 1, outcomes
    assert set(outcomes) <= {p.ACCEPTED, p.REPLAYED, p.LOCKED}, outcomes
    winner = next(r for r in results if r["result"] == p.ACCEPTED)
    assert winner["method"] == "recovery"
    assert winner["recovery_codes_left"] == len(codes) - 1
    status = daemon.request("status", user="root")
    assert status["recovery_codes_left"] == len(codes) - 1
    # Afterwards too it stays spent, and the other codes still work.
    daemon.request("unlock", user="root")
    assert daemon.request("verify", user="root", code=codes[3])["result"] == p.REPLAYED
    assert daemon.request("verify", user="root", code=codes[4])["result"] == p.ACCEPTED


def test_totp_and_recovery_codes_of_one_account_raced_together(daemon: Daemon) -> None:
    """Different codes of one account at once: each recovery code once, the TOTP step once.

    At most four losers (one TOTP, three recovery), so the lock-out after five failures
    in a row cannot turn a first use into "locked".
    """
    secret, step, codes = enroll(daemon, "root")
    totp_code = oathtool(secret, (step + 1) * PERIOD)
    attempts = [("root", totp_code)] * 2 + [("root", code) for code in codes[:3]] * 2
    results = race(daemon, attempts)
    accepted = Counter(r.get("method") for r in results if r["result"] == p.ACCEPTED)
    assert accepted == {"totp": 1, "recovery": 3}, results
    assert Counter(r["result"] for r in results)[p.REPLAYED] == 4
    assert daemon.request("status", user="root")["recovery_codes_left"] == len(codes) - 3


def test_twenty_users_verifying_at_the_same_moment_all_get_in(daemon: Daemon) -> None:
    with ExitStack() as stack:
        users = [stack.enter_context(throwaway_user("tfr")) for _ in range(20)]
        attempts = []
        for user in users:
            secret, step, _codes = enroll(daemon, user.name)
            attempts.append((user.name, oathtool(secret, (step + 1) * PERIOD)))
        results = race(daemon, attempts)

        assert sorted(r["user"] for r in results) == sorted(u.name for u in users)
        assert all(r["result"] == p.ACCEPTED and r["method"] == "totp" for r in results), results
        # And each of those codes is spent now, for its own user only.
        for name, code in attempts[:3]:
            assert daemon.request("verify", user=name, code=code)["result"] == p.REPLAYED
