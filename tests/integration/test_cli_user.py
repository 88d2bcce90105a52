"""twofa, run as a throwaway user: it acts on the caller's own account and no other."""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path

import pytest

from support.cli import Run, run_cli, twofactl
from support.daemon import Daemon
from support.enrollment import Enrolled
from support.oath import oathtool
from support.users import throwaway_user

pytestmark = pytest.mark.integration


def twofa(daemon: Daemon, enrolled: Enrolled, *args: str, input: str | None = None) -> Run:
    return run_cli("user", daemon.socket, *args, user=enrolled.user.uid, input=input)


def test_status_of_ones_own_account(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    shown = twofa(hook_daemon, enrolled, "status", "--json")
    assert shown.returncode == 0
    assert shown.json()["user"] == enrolled.user.name and shown.json()["state"] == "enabled"
    words = twofa(hook_daemon, enrolled, "status")
    assert f"Two-step verification for {enrolled.user.name}: on" in words.stdout


def test_enroll_from_scratch_json(hook_daemon: Daemon) -> None:
    with throwaway_user() as someone:
        begun = run_cli("user", hook_daemon.socket, "enroll", "--json", user=someone.uid)
        assert begun.returncode == 0 and begun.json()["user"] == someone.name
        off_terminal = run_cli("user", hook_daemon.socket, "enroll", user=someone.uid)
        assert off_terminal.returncode == 0, off_terminal.stderr
        assert "twofa confirm CODE" in off_terminal.stdout
        secret = re.search(r"secret=([A-Z2-7]+)", off_terminal.stdout)
        assert secret, off_terminal.stdout
        confirm = ("user", hook_daemon.socket, "confirm")
        wrong = run_cli(*confirm, "000000", "--json", user=someone.uid)
        assert wrong.returncode == 1 and "invalid_code" in wrong.stderr
        status = run_cli("user", hook_daemon.socket, "status", "--json", user=someone.uid)
        assert status.json()["enrollment"] == "pending"
        code = oathtool(secret.group(1), time.time())
        done = run_cli(*confirm, code, "--json", user=someone.uid)
        assert done.returncode == 0, done.stderr
        assert len(done.json()["recovery_codes"]) == 8
        status = run_cli("user", hook_daemon.socket, "status", "--json", user=someone.uid)
        assert status.json()["enrollment"] == "active"


def test_enroll_again_is_refused_unless_replace_with_a_code(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    again = twofa(hook_daemon, enrolled, "enroll", "--json")
    assert again.returncode == 1 and "already_enrolled" in again.stderr
    wrong = twofa(hook_daemon, enrolled, "enroll", "--replace", "--code", "000000", "--json")
    assert wrong.returncode == 1 and "invalid_code" in wrong.stderr
    renewed = twofa(
        hook_daemon, enrolled, "enroll", "--replace", "--code", enrolled.codes.next(), "--json"
    )
    assert renewed.returncode == 0, renewed.stderr
    assert renewed.json()["secret"] != enrolled.codes.secret


def test_show_qr_needs_a_code_and_shows_the_same_key(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    refused = twofa(hook_daemon, enrolled, "show-qr", "--code", "000000")
    assert refused.returncode == 1
    shown = twofa(hook_daemon, enrolled, "show-qr", "--code", enrolled.codes.next(), "--json")
    assert shown.returncode == 0 and shown.json()["secret"] == enrolled.codes.secret


def test_recovery_codes_to_a_private_file(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    target = Path(enrolled.user.home) / "codes.txt"
    done = twofa(
        hook_daemon,
        enrolled,
        "recovery-codes",
        "--regenerate",
        "--code",
        enrolled.codes.next(),
        "--output",
        str(target),
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_uid == enrolled.user.uid
    codes = [line.strip() for line in target.read_text().splitlines() if line.startswith("    ")]
    assert twofactl(hook_daemon.socket, "verify", enrolled.user.name, codes[-1]).returncode == 0


def test_a_refused_output_file_keeps_the_old_recovery_codes(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    missing = Path(enrolled.user.home) / "no-such-dir" / "codes.txt"
    refused = twofa(
        hook_daemon,
        enrolled,
        "recovery-codes",
        "--regenerate",
        "--code",
        enrolled.codes.next(),
        "--output",
        str(missing),
    )
    assert refused.returncode == 1 and "no-such-dir" in refused.stderr
    old = enrolled.recovery_codes[0]
    assert twofactl(hook_daemon.socket, "verify", enrolled.user.name, old).returncode == 0


def test_disable_needs_a_code_and_is_refused_where_required(
    hook_daemon: Daemon, enrolled: Enrolled, policy_path: Path
) -> None:
    policy_path.write_text(
        f"rules:\n  - name: must\n    users: [{enrolled.user.name}]\n    action: required\n"
    )
    assert twofactl(hook_daemon.socket, "reload").returncode == 0
    required = twofa(hook_daemon, enrolled, "disable", "--code", enrolled.codes.next())
    assert required.returncode == 1 and "policy requires" in required.stderr
    policy_path.write_text("default: optional\n")
    assert twofactl(hook_daemon.socket, "reload").returncode == 0
    no_code = twofa(hook_daemon, enrolled, "disable", "--code", "000000")
    assert no_code.returncode == 1
    done = twofa(hook_daemon, enrolled, "disable", "--code", enrolled.codes.next(), "--json")
    assert done.returncode == 0 and done.json()["state"] == "none"


def test_resync_with_two_codes_in_a_row(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    ahead = [oathtool(enrolled.codes.secret, time.time() + 240 + 30 * i) for i in (0, 1)]
    done = twofa(hook_daemon, enrolled, "resync", *ahead, "--json")
    assert done.returncode == 0 and done.json()["result"] == "accepted"


def test_twofa_touches_only_the_callers_account(hook_daemon: Daemon, enrolled: Enrolled) -> None:
    with throwaway_user() as other:
        before = twofactl(hook_daemon.socket, "status", enrolled.user.name, "--json").json()
        for args in (("status",), ("disable", "--code", "000000"), ("show-qr", "--code", "000000")):
            done = run_cli("user", hook_daemon.socket, *args, "--json", user=other.uid)
            if done.returncode == 0:
                assert done.json()["user"] == other.name
        after = twofactl(hook_daemon.socket, "status", enrolled.user.name, "--json").json()
        assert before[0]["state"] == after[0]["state"] == "enabled"
        assert before[0]["failures"] == after[0]["failures"]


def test_codes_given_as_a_dash_come_from_standard_input(
    hook_daemon: Daemon, enrolled: Enrolled
) -> None:
    ahead = [oathtool(enrolled.codes.secret, time.time() + 240 + 30 * i) for i in (0, 1)]
    done = twofa(hook_daemon, enrolled, "resync", "-", "-", "--json", input="\n".join(ahead) + "\n")
    assert done.returncode == 0 and done.json()["result"] == "accepted"
    empty = twofa(hook_daemon, enrolled, "disable", "--code", "-", "--json", input="")
    assert empty.returncode == 1 and "standard input, which had none" in empty.stderr
    assert (
        twofactl(hook_daemon.socket, "status", enrolled.user.name, "--json").json()[0]["state"]
        == "enabled"
    )
