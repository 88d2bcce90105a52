"""Who may do what, decided by the uid the kernel reports for the socket's peer.

Real accounts (useradd) run a real client process as themselves against a live twofad:
nothing in a request can claim another identity, only SO_PEERCRED counts.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pam_twofa import protocol as p
from support.daemon import Daemon
from support.oath import oathtool
from support.users import throwaway_user

if TYPE_CHECKING:  # imported by name at run time, pytest would try to collect it
    from support.users import TestUser

pytestmark = pytest.mark.integration

PERIOD = 30
PYTHON = sys.executable  # the test run's own interpreter, wherever the checkout is
ADMIN_GROUP = "sudo"  # twofad's default administrators' group

# Runs as the test user: each request on its own connection, the answers as JSON lines.
AS_USER = r"""
import json, sys
from pam_twofa.client import Client, RequestFailed
for op, fields in json.loads(sys.argv[2]):
    try:
        with Client(sys.argv[1], timeout=5.0) as client:
            answer = {"ok": True, "data": client.request(op, **fields)}
    except RequestFailed as exc:
        answer = {"ok": False, "code": exc.code, "message": exc.message}
    print(json.dumps(answer), flush=True)
"""


def enrollment_of(status: dict[str, Any]) -> str:
    """none, pending or active; `enrollment` since the policy came, `state` before."""
    return str(status.get("enrollment", status.get("state")))


def fresh_step(min_left: float = 3.0) -> int:
    """The current time step, after waiting for the next one if this one is nearly over."""
    left = PERIOD - time.time() % PERIOD
    if left < min_left:
        time.sleep(left + 0.05)
    return int(time.time() // PERIOD)


def as_user(
    user: TestUser, daemon: Daemon, *requests: tuple[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Send `requests` from a process running with the user's uid, gid and groups."""
    result = subprocess.run(
        [PYTHON, "-c", AS_USER, daemon.socket, json.dumps(requests)],
        user=user.uid,
        group=user.gid,
        extra_groups=os.getgrouplist(user.name, user.gid),
        env={"PATH": "/usr/bin:/bin", "HOME": user.home, "LANG": "C.UTF-8"},
        cwd=user.home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(requests), result.stdout + result.stderr
    return answers


def assert_unauthorized(answer: dict[str, Any]) -> None:
    assert answer["ok"] is False, answer
    assert answer["code"] == p.UNAUTHORIZED, answer


@pytest.fixture
def reachable_daemon() -> Iterator[Daemon]:
    """A twofad whose socket an unprivileged account can reach (pytest's tmp is 0700)."""
    root = tempfile.mkdtemp(prefix="twofa-peer-", dir="/tmp")
    os.chmod(root, 0o755)  # noqa: S103 (the test user must reach the socket)
    daemon = Daemon(Path(root)).start()
    try:
        yield daemon
    finally:
        if daemon.alive():
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def enroll_root(daemon: Daemon) -> tuple[str, int]:
    secret = str(daemon.request("enroll.begin", user="root")["secret"])
    step = fresh_step()
    confirmed = daemon.request("enroll.confirm", user="root", code=oathtool(secret, step * PERIOD))
    assert confirmed["state"] == "active"
    return secret, step


def test_socket_and_state_are_laid_out_for_unprivileged_clients(reachable_daemon: Daemon) -> None:
    # Anyone may connect (access is decided per uid), nobody but root may read the state.
    assert os.stat(reachable_daemon.socket).st_mode & 0o777 == 0o666
    assert os.stat(reachable_daemon.state_dir).st_mode & 0o777 == 0o700


def test_a_user_manages_only_their_own_account(reachable_daemon: Daemon) -> None:
    daemon = reachable_daemon
    root_secret, _root_step = enroll_root(daemon)
    root_before = daemon.request("status", user="root")

    with throwaway_user("tfp") as user:
        first = as_user(
            user,
            daemon,
            ("ping", {}),
            ("status", {"user": user.name}),
            ("enroll.begin", {"user": user.name}),
        )
        assert first[0] == {"ok": True, "data": {"pong": True, "protocol": p.PROTOCOL_VERSION}}
        assert first[1]["ok"] and enrollment_of(first[1]["data"]) == "none"
        assert first[2]["ok"] and first[2]["data"]["user"] == user.name
        secret = first[2]["data"]["secret"]
        assert "otpauth://totp/" in first[2]["data"]["uri"]

        step = fresh_step()
        confirm_code = oathtool(secret, step * PERIOD)
        next_code = oathtool(secret, (step + 1) * PERIOD)
        root_code = oathtool(root_secret, (step + 1) * PERIOD)
        answers = as_user(
            user,
            daemon,
            ("enroll.confirm", {"user": user.name, "code": confirm_code}),  # 0
            ("status", {"user": user.name}),  # 1
            ("verify", {"user": user.name, "code": next_code}),  # 2: root only
            ("verify", {"user": "root", "code": root_code}),  # 3
            ("status", {"user": "root"}),  # 4
            ("enroll.begin", {"user": "root"}),  # 5
            ("enroll.confirm", {"user": "root", "code": root_code}),  # 6
            ("disable", {"user": "root"}),  # 7
            ("disable", {"user": "root", "code": root_code}),  # 8
            ("unlock", {"user": "root"}),  # 9
            ("unlock", {"user": user.name}),  # 10: an administrator's operation
            ("list", {}),  # 11
            ("recovery.regenerate", {"user": "root"}),  # 12
            ("resync", {"user": "root", "code1": root_code, "code2": root_code}),  # 13
            ("status", {"user": "no-such-user-here"}),  # 14: no probing for accounts
            ("status", {"user": "daemon"}),  # 15
            ("disable", {"user": user.name}),  # 16: active now, so proof is needed
            ("disable", {"user": user.name, "code": "000000" if next_code != "000000" else "1"}),
            ("status", {"user": user.name}),  # 18
            ("disable", {"user": user.name, "code": next_code}),  # 19
            ("status", {"user": user.name}),  # 20
        )
        confirmed = answers[0]
        assert confirmed["ok"], confirmed
        assert confirmed["data"]["state"] == "active"
        assert len(confirmed["data"]["recovery_codes"]) == 8
        status = answers[1]["data"]
        assert enrollment_of(status) == "active" and status["recovery_codes_left"] == 8
        for index in range(2, 16):
            assert_unauthorized(answers[index])
        assert "root" in answers[2]["message"]
        assert_unauthorized(answers[16])
        assert "code" in answers[16]["message"]
        assert answers[17] == {
            "ok": False,
            "code": p.INVALID_CODE,
            "message": answers[17]["message"],
        }
        assert answers[18]["data"]["failures"] == 1  # the wrong proof counted
        assert enrollment_of(answers[18]["data"]) == "active"
        # The refused verify (2) did not spend the step: the same code is the proof here.
        assert answers[19]["ok"], answers[19]
        assert enrollment_of(answers[20]["data"]) == "none"

        # Root, asking for the user, sees what the user did, and root's own account is as it
        # was: no failure counted, no code spent, nothing regenerated.
        assert enrollment_of(daemon.request("status", user=user.name)) == "none"
        assert daemon.request("status", user="root") == root_before
        accepted = daemon.request("verify", user="root", code=root_code)
        assert accepted["result"] == p.ACCEPTED


def test_the_uid_decides_not_the_name_in_the_request(reachable_daemon: Daemon) -> None:
    """Two users: each is a stranger to the other's account."""
    daemon = reachable_daemon
    with throwaway_user("tfpa") as alice, throwaway_user("tfpb") as bob:
        began = as_user(alice, daemon, ("enroll.begin", {"user": alice.name}))[0]
        assert began["ok"]
        answers = as_user(
            bob,
            daemon,
            ("status", {"user": alice.name}),
            ("enroll.begin", {"user": alice.name}),
            ("disable", {"user": alice.name}),
            ("enroll.begin", {"user": bob.name}),
        )
        for answer in answers[:3]:
            assert_unauthorized(answer)
        assert answers[3]["ok"]
        # Alice's pending set-up is untouched: the secret she was given still confirms.
        secret = began["data"]["secret"]
        code = oathtool(secret, fresh_step() * PERIOD)
        confirmed = as_user(alice, daemon, ("enroll.confirm", {"user": alice.name, "code": code}))
        assert confirmed[0]["ok"] and confirmed[0]["data"]["state"] == "active"


def test_an_administrator_manages_others_but_makes_no_login_decision(
    reachable_daemon: Daemon,
) -> None:
    try:
        grp.getgrnam(ADMIN_GROUP)
    except KeyError:
        pytest.skip(f"no {ADMIN_GROUP} group on this machine")
    daemon = reachable_daemon
    root_secret, step = enroll_root(daemon)
    # Lock root out with wrong codes, for the administrator to lift.
    for _ in range(5):
        daemon.request("verify", user="root", code="zzzz-zzzz-zzzz")
    assert daemon.request("status", user="root")["locked"] is True
    root_code = oathtool(root_secret, (step + 1) * PERIOD)

    with throwaway_user("tfadm", groups=(ADMIN_GROUP,)) as admin:
        answers = as_user(
            admin,
            daemon,
            ("status", {"user": "root"}),  # 0
            ("list", {}),  # 1
            ("unlock", {"user": "root"}),  # 2
            ("verify", {"user": "root", "code": root_code}),  # 3: root only
            ("verify", {"user": admin.name, "code": "123456"}),  # 4: root only, even oneself
            ("status", {"user": "root"}),  # 5
            ("status", {"user": "no-such-user-here"}),  # 6: administrators may ask
        )
        status = answers[0]
        assert status["ok"] and enrollment_of(status["data"]) == "active"
        assert status["data"]["locked"] is True
        listed = answers[1]
        assert listed["ok"] and "root" in [entry["user"] for entry in listed["data"]["users"]]
        assert answers[2]["ok"] and answers[2]["data"]["unlocked"] is True
        assert_unauthorized(answers[3])
        assert_unauthorized(answers[4])
        assert answers[5]["data"]["locked"] is False
        assert answers[5]["data"]["failures"] == 0  # the refused verify counted nothing
        assert answers[6]["ok"] is False and answers[6]["code"] == p.UNKNOWN_USER
        # ... and spent nothing: the code the administrator tried still logs root in.
        assert daemon.request("verify", user="root", code=root_code)["result"] == p.ACCEPTED

        answers = as_user(
            admin,
            daemon,
            ("disable", {"user": "root"}),  # no proof is asked of an administrator
            ("status", {"user": "root"}),
        )
        assert answers[0]["ok"], answers[0]
        assert enrollment_of(answers[1]["data"]) == "none"
    assert enrollment_of(daemon.request("status", user="root")) == "none"
    # The audit trail names the administrator's uid, not a name from the request.
    assert f"peer_uid={admin.uid}" in daemon.log_text()


def test_a_user_cannot_hold_more_than_its_share_of_connections(reachable_daemon: Daemon) -> None:
    """max_per_uid (32): the 33rd connection of one non-root uid is refused as busy."""
    program = r"""
import json, socket, sys
held = []
for index in range(33):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sys.argv[1])
    try:
        s.sendall(b'{"v":1,"op":"ping","id":%d}\n' % index)
    except BrokenPipeError:  # refused at the door before we wrote: the refusal is there
        pass
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    held.append(s)
    print(reply.decode().strip() or "closed", flush=True)
"""
    with throwaway_user("tfc") as user:
        result = subprocess.run(
            [PYTHON, "-c", program, reachable_daemon.socket],
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/tmp",
        )
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(replies) == 33
    assert [reply["id"] for reply in replies[:32]] == list(range(32))
    assert replies[32]["ok"] is False and replies[32]["error"]["code"] == p.BUSY
    # Root is not counted against anyone's share.
    assert reachable_daemon.request("ping")["pong"] is True
