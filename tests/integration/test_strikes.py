"""The lifetime count of failed codes through a real twofad: kept across a success and a
restart, forgiven only for the owner's own place, and shown by `twofactl status`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.cli import twofactl
from support.daemon import Daemon
from support.enrollment import Enrolled
from support.oath import oathtool

pytestmark = pytest.mark.integration

HOME = {"service": "sshd", "rhost": "192.0.2.10"}
ELSEWHERE = {"service": "sshd", "rhost": "203.0.113.9"}


def wrong_code(secret: str) -> str:
    """A code none of the steps the daemon may try would accept."""
    now = time.time()
    near = {oathtool(secret, now + offset * 30) for offset in range(-2, 3)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in near)


def status_of(daemon: Daemon, name: str) -> dict[str, object]:
    done = twofactl(daemon.socket, "status", name, "--json")
    assert done.returncode == 0, done.stderr
    [status] = done.json()
    return dict(status)


def test_strikes_survive_a_success_and_a_restart_and_status_shows_them(
    hook_daemon: Daemon, enrolled: Enrolled, shared_dir: Path, policy_path: Path
) -> None:
    name, secret = enrolled.user.name, enrolled.codes.secret
    for _ in range(3):
        reply = hook_daemon.request("verify", user=name, code=wrong_code(secret), **ELSEWHERE)
        assert reply["result"] == "rejected"
    accepted = hook_daemon.request("verify", user=name, code=enrolled.codes.next(), **HOME)
    assert accepted["result"] == "accepted"
    status = status_of(hook_daemon, name)
    assert (status["failures"], status["strikes"], status["hard_after"]) == (0, 3, 100)

    # The owner's own typo, then the right code from the same place: forgiven.
    typo = hook_daemon.request("verify", user=name, code=wrong_code(secret), **HOME)
    assert typo["result"] == "rejected" and status_of(hook_daemon, name)["strikes"] == 4
    again = hook_daemon.request("verify", user=name, code=enrolled.codes.next(), **HOME)
    assert again["result"] == "accepted"
    status = status_of(hook_daemon, name)
    assert (status["failures"], status["strikes"]) == (0, 3)

    text = twofactl(hook_daemon.socket, "status", name)
    assert text.returncode == 0, text.stderr
    header, row = text.stdout.splitlines()[:2]
    assert "FAILURES" in header and "STRIKES" in header
    assert row.split()[0] == name and "3/100" in row.split()

    # In the database, not in the process: a restart keeps them.
    assert hook_daemon.stop() == 0
    restarted = Daemon(shared_dir, "--policy", str(policy_path)).start()
    try:
        assert status_of(restarted, name)["strikes"] == 3
        # A smaller budget: two more guesses from elsewhere reach it, whatever came between.
        policy_path.write_text("default: optional\nlockout: {after: 5, hard_after: 5}\n")
        assert twofactl(restarted.socket, "reload").returncode == 0
        for expected in (False, True):
            reply = restarted.request("verify", user=name, code=wrong_code(secret), **ELSEWHERE)
            assert reply["result"] == "rejected" and reply.get("hard_locked", False) is expected
        status = status_of(restarted, name)
        assert (status["failures"], status["strikes"], status["hard_after"]) == (2, 5, 5)
        assert status["hard_locked"] is True
        assert "5/5" in twofactl(restarted.socket, "status", name).stdout.split()
        assert twofactl(restarted.socket, "unlock", name).returncode == 0
        status = status_of(restarted, name)
        assert (status["failures"], status["strikes"], status["hard_locked"]) == (0, 0, False)
    finally:
        if restarted.alive():
            restarted.stop()
